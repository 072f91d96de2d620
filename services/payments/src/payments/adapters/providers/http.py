"""Outgoing HTTP to providers: httpx with tenacity retries on what is safe to retry."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

T = TypeVar("T")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


def _not_sent(exc: BaseException) -> bool:
    # Only errors where the request never reached the provider: safe even without an idempotency key.
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


async def with_retries(attempts: int, call: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=0.05, max=2),
        retry=retry_if_exception(_transient if idempotent else _not_sent),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable")
