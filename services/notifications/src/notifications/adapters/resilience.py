"""Circuit breakers (per process) and rate limits (shared by every replica through Redis)."""

import time
import uuid
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


# Sliding one-hour window, atomically: drop entries older than the window, refuse when the window is
# full (answering how long until its oldest entry leaves), else record this send. A refused send costs
# no quota, and no hour-long span ever holds more than the limit (a fixed window lets 2x through
# around its boundary).
_TAKE = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return -math.max(1, math.ceil((tonumber(oldest[2]) + window - now) * 1000))
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
return 1
"""


class RateLimiter:
    """Sliding one-hour windows per provider, kept in Redis so that all replicas share one quota."""

    def __init__(self, redis: Redis, prefix: str, window_s: int = 3600, clock: Callable[[], float] = time.time) -> None:
        self._redis, self._prefix, self._window, self._clock = redis, prefix, window_s, clock
        self._take = redis.register_script(_TAKE)
        self._free_in_s = float(window_s)

    def _key(self, provider: str) -> str:
        return f"{self._prefix}ratelimit:{provider}"

    async def acquire(self, provider: str, limit: int) -> bool:
        answer = int(
            await self._take(keys=[self._key(provider)], args=[self._clock(), self._window, limit, uuid.uuid4().hex])
        )
        if answer < 0:
            self._free_in_s = -answer / 1000
            return False
        return True

    def next_window_in(self) -> float:
        """Seconds until the most recently refused provider has room again."""
        return self._free_in_s
