"""Rate limiting per client and endpoint: a token bucket each, with the standard RateLimit-* headers.

Buckets live in this process's memory, so each replica limits independently (documented in docs/orders.md);
a shared limit would keep the buckets in Redis instead.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from servicekit.problems import problem_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_IDS = re.compile(r"/[0-9a-fA-F-]{32,36}(?=/|$)")
EXEMPT = ("/healthz", "/readyz", "/metrics")


@dataclass
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, capacity: int, window_seconds: float, max_keys: int = 100_000) -> None:
        self.capacity = capacity
        self.refill_per_second = capacity / window_seconds
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str, now: float) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until a token is back)."""
        bucket = self._buckets.pop(key, None) or Bucket(tokens=float(self.capacity), updated=now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_second)
        bucket.updated = now
        allowed = bucket.tokens >= 1
        if allowed:
            bucket.tokens -= 1
        self._buckets[key] = bucket
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)  # forget the least recently seen client
        wait = 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.refill_per_second
        return allowed, int(bucket.tokens), wait


def client_key(scope: Scope) -> str:
    headers = dict(scope.get("headers", []))
    auth = headers.get(b"authorization")
    if auth:
        # The token identifies the client; only a digest is kept in memory.
        return "t:" + hashlib.sha256(auth).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def endpoint_key(scope: Scope) -> str:
    return f"{scope['method']} {_IDS.sub('/{id}', scope['path'])}"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, requests: int, window_seconds: float) -> None:
        self.app = app
        self.buckets = TokenBuckets(requests, window_seconds)
        self.limit = requests
        self.window = window_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        allowed, remaining, wait = self.buckets.take(f"{client_key(scope)}|{endpoint_key(scope)}", time.monotonic())
        reset = max(0, math.ceil(wait))
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{self.limit};w={int(self.window)}",
        }
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

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
