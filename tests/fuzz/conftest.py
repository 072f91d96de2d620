"""One running system for the fuzz tests: orders, payments and notifications as real processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.system import System, running_system

FUZZED = ["orders", "payments", "notifications"]


@pytest.fixture(scope="package")
def fuzz_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running_system(tmp_path_factory.mktemp("fuzz"), FUZZED) as system:
        yield system
