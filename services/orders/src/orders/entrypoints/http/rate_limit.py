"""Rate limiting per client and endpoint, shared by every replica: sliding windows in Redis.

Each client (a digest of its bearer token, else its IP) gets, per endpoint (method + path with ids folded),
at most `limit` requests in any `window` seconds. The window is a sorted set of request times in Redis,
checked and updated by servicekit's `SlidingWindow` script, so all replicas count against the same window
(and a sliding window, unlike a fixed one, never lets twice the limit through around a boundary). Redis's
own clock timestamps the entries, so replicas with skewed clocks still agree.

If Redis cannot be reached the limiter fails open: the request goes through without RateLimit-Remaining,
a warning is logged (at most every few seconds) and `orders_rate_limit_unavailable_total` counts it. For a
few seconds after a failure Redis is not asked at all, so an unreachable Redis costs no request a timeout.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Callable

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from servicekit.problems import problem_response
from servicekit.sliding_window import SlidingWindow
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

_IDS = re.compile(r"/[0-9a-fA-F-]{32,36}(?=/|$)")
EXEMPT = ("/healthz", "/readyz", "/metrics")

UNAVAILABLE = Counter(
    "orders_rate_limit_unavailable_total", "Requests let through unlimited because Redis could not be reached"
)


class SlidingWindows:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        limit: int,
        window_seconds: float,
        backoff_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.window_ms = max(1, int(window_seconds * 1000))
        self._window = SlidingWindow(redis)
        self._backoff = backoff_seconds
        self._clock = clock
        self._skip_until = 0.0
        self._warned_at = -math.inf

    async def take(self, key: str) -> tuple[bool, int, float] | None:
        """(allowed, remaining, seconds until a slot frees), or None when Redis is unavailable (fail open)."""
        now = self._clock()
        if now < self._skip_until:
            UNAVAILABLE.inc()
            return None
        try:
            taken = await self._window.take(self.prefix + key, limit=self.limit, window_ms=self.window_ms)
        except (RedisError, OSError) as error:
            UNAVAILABLE.inc()
            self._skip_until = now + self._backoff
            if now - self._warned_at >= self._backoff:
                self._warned_at = now
                log.warning("rate limiter: Redis unavailable, letting requests through unlimited: %s", error)
            return None
        return taken.admitted, max(0, self.limit - taken.entries), taken.wait_ms / 1000

    async def close(self) -> None:
        await self.redis.aclose()


def client_key(scope: Scope) -> str:
    headers = dict(scope.get("headers", []))
    auth = headers.get(b"authorization")
    if auth:
        # The token identifies the client; only a digest is stored.
        return "t:" + hashlib.sha256(auth).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def endpoint_key(scope: Scope) -> str:
    return f"{scope['method']} {_IDS.sub('/{id}', scope['path'])}"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, windows: SlidingWindows, window_seconds: float) -> None:
        self.app = app
        self.windows = windows
        self.limit = windows.limit
        self.window = window_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        taken = await self.windows.take(f"{client_key(scope)}|{endpoint_key(scope)}")
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Policy": f"{self.limit};w={int(self.window)}"}
        if taken is not None:
            allowed, remaining, wait = taken
            reset = max(0, math.ceil(wait))
            headers |= {"RateLimit-Remaining": str(remaining), "RateLimit-Reset": str(reset)}
            if not allowed:
                headers["Retry-After"] = str(max(1, reset))
                response = problem_response(
                    429,
                    "Too many requests",
                    f"At most {self.limit} requests per {int(self.window)} s to this endpoint;"
                    f" retry after {max(1, reset)} s.",
                    instance=scope["path"],
                    headers=headers,
                )
                await response(scope, receive, send)
                return
        encoded = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *encoded]
            await send(message)

        await self.app(scope, receive, with_headers)
