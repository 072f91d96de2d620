"""Circuit breakers (per process) and rate limits (shared by every replica through Redis)."""

import time
from collections.abc import Callable

from redis.asyncio import Redis


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


# Atomic check-and-count: never counts past the limit, so a refused send costs no quota.
_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return -1 end
used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return used
"""


class RateLimiter:
    """Fixed one-hour windows per provider, counted in Redis so that all replicas share one quota."""

    def __init__(self, redis: Redis, prefix: str, window_s: int = 3600, clock: Callable[[], float] = time.time) -> None:
        self._redis, self._prefix, self._window, self._clock = redis, prefix, window_s, clock
        self._take = redis.register_script(_TAKE)

    def _key(self, provider: str) -> str:
        return f"{self._prefix}ratelimit:{provider}:{int(self._clock()) // self._window}"

    async def acquire(self, provider: str, limit: int) -> bool:
        used = await self._take(keys=[self._key(provider)], args=[limit, self._window * 2])
        return int(used) >= 0

    def next_window_in(self) -> float:
        now = self._clock()
        return self._window - (now % self._window)
