"""Cross-service fixtures: the whole system as real processes."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.system import System, running_system


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    only = os.environ.get("E2E_SERVICES")  # a developer's shortcut; CI runs all four
    services = only.split(",") if only else None
    with running_system(tmp_path_factory.mktemp("system"), services) as running:
        yield running


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
