"""Circuit breakers (per process) and rate limits (shared by every replica through Redis)."""

import time
from collections.abc import Callable

from redis.asyncio import Redis
from servicekit.sliding_window import SlidingWindow


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `reset_s` one trial call is let through."""

    def __init__(self, threshold: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.reset_s, self._clock = threshold, reset_s, clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self.opened_at >= self.reset_s else "open"

    def allows(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.state == "half_open":
            self.opened_at = self._clock()


class RateLimiter:
    """Sliding one-hour windows per provider, kept in Redis so that all replicas share one quota."""

    def __init__(self, redis: Redis, prefix: str, window_s: int = 3600, clock: Callable[[], float] = time.time) -> None:
        self._redis, self._prefix, self._window, self._clock = redis, prefix, window_s, clock
        self._windows = SlidingWindow(redis)
        self._free_in_s = float(window_s)

    def _key(self, provider: str) -> str:
        return f"{self._prefix}ratelimit:{provider}"

    async def acquire(self, provider: str, limit: int) -> bool:
        """One send under the provider's quota; a refused send costs no quota (servicekit.sliding_window)."""
        taken = await self._windows.take(
            self._key(provider), limit=limit, window_ms=self._window * 1000, now_ms=int(self._clock() * 1000)
        )
        if not taken.admitted:
            self._free_in_s = taken.wait_ms / 1000
        return taken.admitted

    def next_window_in(self) -> float:
        """Seconds until the most recently refused provider has room again."""
        return self._free_in_s
