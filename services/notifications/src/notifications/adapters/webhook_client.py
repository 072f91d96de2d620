"""Posting one outbound webhook, signed the Standard Webhooks way (`webhook-id/-timestamp/-signature`)."""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook


@dataclass(frozen=True)
class WebhookResult:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
        "content-type": "application/json",
        "user-agent": "OneClass-Webhooks/1",
    }


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


async def post(
    http: httpx.AsyncClient, url: str, secret: str, message_id: str, payload: dict[str, Any]
) -> WebhookResult:
    body = encode(payload)
    headers = signed_headers(secret, message_id, body, datetime.now(UTC))
    started = time.perf_counter()
    try:
        response = await http.post(url, content=body.encode(), headers=headers, follow_redirects=False)
    except httpx.HTTPError as exc:
        return WebhookResult(None, f"{type(exc).__name__}: {exc}"[:500], _ms(started))
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return WebhookResult(response.status_code, error, _ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
