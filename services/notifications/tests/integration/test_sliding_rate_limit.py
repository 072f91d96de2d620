"""The shared rate limit is a sliding hour: no hour-long span, boundary or not, holds more than the limit."""

import uuid

import pytest
from notifications.adapters.resilience import RateLimiter
from redis.asyncio import Redis

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_no_burst_of_twice_the_quota_around_an_hour_boundary() -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    clock = Clock(3599.0)  # one second before a fixed window would roll over
    prefix = f"test-{uuid.uuid4().hex}:"
    limiter = RateLimiter(redis, prefix=prefix, clock=clock)
    other_replica = RateLimiter(redis, prefix=prefix, clock=clock)
    try:
        assert [await limiter.acquire("telone", 3) for _ in range(3)] == [True, True, True]
        assert not await other_replica.acquire("telone", 3)  # the quota is shared

        clock.now = 3601.0  # a fixed window would start afresh here and let three more through
        assert not await limiter.acquire("telone", 3)
        assert limiter.next_window_in() == pytest.approx(3598.0, abs=0.01)

        clock.now = 3599.0 + 3600.0 + 0.5  # the first sends have left the hour
        assert await limiter.acquire("telone", 3)
        assert await limiter.acquire("econet", 3)  # providers are counted apart
    finally:
        await redis.delete(f"{prefix}ratelimit:telone", f"{prefix}ratelimit:econet")
        await redis.aclose()
