"""Sliding-window counters in Redis, shared by every replica: API rate limits, provider quotas.

A window is a sorted set of admission times, checked and updated by one Lua script: drop what is older
than the window, refuse when it is full (answering when its oldest entry leaves), else record this one.
A refused attempt is not recorded, and no span of `window` ever admits more than `limit` (a fixed window
lets twice the limit through around its boundary).
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

from redis.asyncio import Redis

# KEYS[1] the window; ARGV: window ms, limit, a unique member, and the time in ms (empty: Redis's own clock,
# so replicas with skewed clocks agree). Returns {admitted, entries now in the window, ms until one frees}.
_TAKE = """
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[4])
end
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local admitted = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + 1
  admitted = 1
end
local wait = 0
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = math.max(1, tonumber(oldest[2]) + window - now)
end
return {admitted, count, wait}
"""


class Taken(NamedTuple):
    admitted: bool
    entries: int  # in the window, this one included when admitted
    wait_ms: int  # until the oldest entry leaves; 0 while the window has room


class SlidingWindow:
    def __init__(self, redis: Redis) -> None:
        self._take = redis.register_script(_TAKE)

    async def take(self, key: str, *, limit: int, window_ms: int, now_ms: int | None = None) -> Taken:
        """Admit one attempt under `key` if the window has room. `now_ms` only for a caller-kept clock."""
        admitted, count, wait = await self._take(
            keys=[key], args=[window_ms, limit, uuid.uuid4().hex, "" if now_ms is None else now_ms]
        )
        return Taken(bool(admitted), int(count), int(wait))
