"""Outbound callbacks (webhooks, delivery reports, status updates) the sandbox sends on behalf of providers.

Every callback is stored before it is sent, so tests can replay it, duplicate it, delay it, hold it back
or send a batch in a chosen order, which is how "delayed, duplicated, reordered and failing deliveries"
are staged.
"""

import asyncio
import random
import secrets
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

# Signs a body at send time (Stripe signs with the current timestamp); the flag asks for a wrong signature.
Signer = Callable[[bytes, bool], dict[str, str]]


# Pauses between the attempts of one delivery while the receiver is unreachable or failing.
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class DeliveryOptions(BaseModel):
    delay_ms: int = Field(default=0, ge=0, le=600_000)
    duplicates: int = Field(default=0, ge=0, le=100, description="extra identical deliveries")
    deliver: bool = Field(default=True, description="false stores the callback without sending it")
    url: str | None = Field(default=None, description="send here instead of the configured URL")
    bad_signature: bool = Field(default=False, description="sign with a wrong secret")


class BatchDelivery(BaseModel):
    event_ids: list[str] = Field(min_length=1)
    order: Literal["given", "reversed", "shuffled"] = "given"
    seed: int | None = None
    delay_ms: int = Field(default=0, ge=0, le=600_000, description="pause before each delivery")
    url: str | None = None


@dataclass
class DeliveryAttempt:
    at: datetime
    url: str
    status_code: int | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "url": self.url,
            "status_code": self.status_code,
            "error": self.error,
        }


@dataclass
class Callback:
    id: str
    provider: str
    kind: str
    subject: str
    url: str
    body: bytes
    content_type: str
    signer: Signer | None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "kind": self.kind,
            "subject": self.subject,
            "url": self.url,
            "content_type": self.content_type,
            "body": self.body.decode("utf-8", errors="replace"),
            "created_at": self.created_at.isoformat(),
            "attempts": [a.as_json() for a in self.attempts],
        }


class CallbackDispatcher:
    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._callbacks: dict[str, Callback] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout_s)

    async def stop(self) -> None:
        self.cancel_pending()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def reset(self) -> None:
        self.cancel_pending()
        self._callbacks.clear()

    def cancel_pending(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def record(
        self,
        *,
        provider: str,
        kind: str,
        subject: str,
        url: str,
        body: bytes,
        content_type: str,
        signer: Signer | None = None,
    ) -> Callback:
        callback = Callback(
            id=f"cb_{secrets.token_hex(8)}",
            provider=provider,
            kind=kind,
            subject=subject,
            url=url,
            body=body,
            content_type=content_type,
            signer=signer,
        )
        self._callbacks[callback.id] = callback
        return callback

    def get(self, callback_id: str) -> Callback | None:
        return self._callbacks.get(callback_id)

    def find(
        self, *, provider: str | None = None, kind: str | None = None, subject: str | None = None
    ) -> list[Callback]:
        return [
            cb
            for cb in self._callbacks.values()
            if (provider is None or cb.provider == provider)
            and (kind is None or cb.kind == kind)
            and (subject is None or cb.subject == subject)
        ]

    def dispatch(self, callback: Callback, options: DeliveryOptions) -> None:
        """Send in the background (acceptance of the triggering request never waits for the receiver)."""
        if not options.deliver:
            return
        self._spawn(self._deliver_with_options(callback, options))

    def dispatch_batch(self, callbacks: Iterable[Callback], batch: BatchDelivery) -> list[str]:
        ordered = list(callbacks)
        if batch.order == "reversed":
            ordered.reverse()
        elif batch.order == "shuffled":
            random.Random(batch.seed).shuffle(ordered)
        self._spawn(self._deliver_in_order(ordered, batch))
        return [cb.id for cb in ordered]

    async def send(self, callback: Callback, *, url: str | None = None, bad_signature: bool = False) -> None:
        """Deliver once, retrying like the real providers do while the receiver is down or answers 5xx
        (Stripe retries for days; compressed here into about a minute). A 4xx is an answer: not retried."""
        for delay in (*RETRY_DELAYS_S, None):
            status = await self._attempt(callback, url or callback.url, bad_signature)
            if delay is None or (status is not None and status < 500 and status not in (408, 429)):
                return
            await asyncio.sleep(delay)

    async def _attempt(self, callback: Callback, target: str, bad_signature: bool) -> int | None:
        headers = {"Content-Type": callback.content_type, "User-Agent": f"oneclass-sandbox/{callback.provider}"}
        if callback.signer is not None:  # signed afresh each time, with a fresh timestamp
            headers.update(callback.signer(callback.body, bad_signature))
        at = datetime.now(UTC)
        if self._client is None:
            raise RuntimeError("dispatcher is not started")
        try:
            response = await self._client.post(target, content=callback.body, headers=headers)
        except httpx.HTTPError as exc:
            callback.attempts.append(DeliveryAttempt(at, target, None, f"{type(exc).__name__}: {exc}"))
            return None
        callback.attempts.append(DeliveryAttempt(at, target, response.status_code, None))
        return response.status_code

    async def _deliver_with_options(self, callback: Callback, options: DeliveryOptions) -> None:
        if options.delay_ms:
            await asyncio.sleep(options.delay_ms / 1000)
        for _ in range(1 + options.duplicates):
            await self.send(callback, url=options.url, bad_signature=options.bad_signature)

    async def _deliver_in_order(self, callbacks: list[Callback], batch: BatchDelivery) -> None:
        for callback in callbacks:
            if batch.delay_ms:
                await asyncio.sleep(batch.delay_ms / 1000)
            await self.send(callback, url=batch.url)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
