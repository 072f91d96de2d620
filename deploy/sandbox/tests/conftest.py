import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx
import pytest
from sandbox import RunningSandbox, SandboxSettings, sandbox_in_thread

T = TypeVar("T")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_in_thread(SandboxSettings()) as running:
        yield running


@pytest.fixture
def client(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as http:
        http.post("/_sandbox/reset").raise_for_status()
        yield http


def eventually(probe: Callable[[], T | None], attempts: int = 500) -> T:
    """Poll until ``probe`` returns something truthy: callbacks are delivered in the background."""
    for _ in range(attempts):
        result = probe()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError("condition never became true")


def received(client: httpx.Client, name: str, count: int) -> list[dict]:
    def probe() -> list[dict] | None:
        got: list[dict] = client.get(f"/_sandbox/receiver/{name}").json()
        return got if len(got) >= count else None

    return eventually(probe)
