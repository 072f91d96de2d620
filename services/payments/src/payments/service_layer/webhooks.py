"""Webhook intake and application.

Intake checks the signature and stores the raw delivery in one INSERT, then answers at once; a worker
then verifies it again and books it in its own transaction. A crash between the two leaves the row
`received`, and whoever starts next picks it up: applied once, never lost.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from servicekit.db import Database
from servicekit.metrics import WEBHOOK_VERIFICATION_FAILURES
from servicekit.problems import Problem
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from payments.adapters.providers.base import ProviderEvent, WebhookRejected
from payments.adapters.providers.registry import Providers
from payments.adapters.tables import AppliedEventRow, WebhookRow, now
from payments.adapters.webhook_inbox import WebhookInbox
from payments.service_layer.ledger import PaymentNotVisible, book_event

log = logging.getLogger(__name__)

WEBHOOK_PROVIDERS = ("stripe", "paynow", "ecocash", "onemoney")
_SIGNED = frozenset({"stripe", "paynow", "onemoney"})  # EcoCash callbacks carry no signature
# Headers worth keeping for inspection; never credentials or cookies.
_KEPT_HEADERS = ("content-type", "user-agent", "stripe-signature", "x-forwarded-for", "content-length")


@dataclass(frozen=True)
class Received:
    id: int | None  # None: a duplicate of a delivery already stored
    status: str
    reason: str | None = None
    event_key: str | None = None


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() in _KEPT_HEADERS}


async def receive(
    inbox: WebhookInbox, providers: Providers, provider: str, body: bytes, headers: dict[str, str]
) -> Received:
    """Verify, then store in one INSERT: verified (to apply), a duplicate (not stored again) or rejected.

    Verifying before the INSERT loses nothing: a delivery we never answered 2xx is retried by the provider.
    A refused one is still stored, with its reason, for inspection.
    """
    if provider not in WEBHOOK_PROVIDERS:
        raise Problem(404, "Not found", f"No webhooks for provider {provider!r}.")
    source = providers.webhook_sources()[provider]  # type: ignore[index]
    headers = {k.lower(): v for k, v in headers.items()}
    received_at = now()
    try:
        event = source.verify_webhook(body, headers, received_at.timestamp())
    except WebhookRejected as exc:
        WEBHOOK_VERIFICATION_FAILURES.labels(provider).inc()
        reason = str(exc)[:1000]
        row_id = await inbox.store(
            provider=provider,
            event_key=source.event_key_hint(body),
            dedupe_key=None,
            headers=kept_headers(headers),
            body=body,
            received_at=received_at,
            status="rejected",
            reason=reason,
        )
        return Received(row_id, "rejected", reason)
    # Only a signed delivery's key can be trusted to name the event (an unsigned EcoCash hint with a forged
    # key must not shadow the real callback), and only when it is final: a PayNow "Paid" the poll did not
    # confirm yet must not shadow the same status sent again once the money is there.
    final = provider in _SIGNED and not event.needs_confirmation
    dedupe_key = f"{_family(provider)}:{event.event_key}" if final else None
    row_id = await inbox.store(
        provider=provider,
        event_key=event.event_key[:200],
        dedupe_key=dedupe_key,
        headers=kept_headers(headers),
        body=body,
        received_at=received_at,
        status="received",
    )
    return Received(row_id, "received" if row_id is not None else "duplicate", event_key=event.event_key)


async def apply_next(db: Database, providers: Providers, max_attempts: int, retry_delays_s: Sequence[float]) -> bool:
    """Claim one stored webhook that is due (SKIP LOCKED: replicas share the work) and book it. False when
    none waits."""
    async with db.transaction() as session:
        row = (
            await session.scalars(
                select(WebhookRow)
                .where(
                    WebhookRow.status == "received",
                    WebhookRow.attempts < max_attempts,
                    col(WebhookRow.next_attempt_at) <= func.now(),
                )
                .order_by(col(WebhookRow.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).first()
        if row is None:
            return False
        try:
            async with session.begin_nested():
                await _apply(session, providers, row)
        except Exception as exc:
            # Whatever failed (provider lookup down, deadlock) rolled back; the row waits for another try.
            # The savepoint's rollback expired what _apply had set on the row: load it again before counting.
            await session.refresh(row)
            row.attempts += 1
            row.reason = f"attempt {row.attempts} failed: {type(exc).__name__}: {exc}"[:1000]
            if row.attempts >= max_attempts:
                # A payment of ours that never became visible needs a person, like any money we cannot place.
                row.status = "quarantined" if isinstance(exc, PaymentNotVisible) else "failed"
                row.processed_at = now()
            elif retry_delays_s:
                delay = retry_delays_s[min(row.attempts, len(retry_delays_s)) - 1]
                row.next_attempt_at = now() + timedelta(seconds=delay)
            log.warning("webhook %s: %s", row.id, row.reason)
        return True


async def _apply(session: AsyncSession, providers: Providers, row: WebhookRow) -> None:
    source = providers.webhook_sources()[row.provider]  # type: ignore[index]
    try:
        event = source.verify_webhook(row.body, row.headers, row.received_at.timestamp())
    except WebhookRejected as exc:
        _mark(row, "rejected", str(exc))
        return
    row.event_key = event.event_key
    if await _already_applied(session, event):
        _mark(row, "duplicate", f"event {event.event_key} was applied before")
        return
    booking = await book_event(session, providers, event)
    row.payment_id = booking.payment_id
    if booking.outcome == "applied":
        await _remember(session, event, row, booking.dedupe_key)
    _mark(row, booking.outcome, booking.reason)


async def _already_applied(session: AsyncSession, event: ProviderEvent) -> bool:
    found = await session.get(AppliedEventRow, (_family(event.provider), event.event_key))
    return found is not None


async def _remember(session: AsyncSession, event: ProviderEvent, row: WebhookRow, confirmed: str | None) -> None:
    table: Any = AppliedEventRow.__table__  # type: ignore[attr-defined]
    for key in {event.event_key, *([confirmed] if confirmed else [])}:
        await session.execute(
            pg_insert(table)
            .values(provider=_family(event.provider), event_key=key, webhook_id=row.id, applied_at=now())
            .on_conflict_do_nothing()
        )


def _family(provider: str) -> str:
    return "paynow" if provider == "onemoney" else provider


def _mark(row: WebhookRow, status: str, reason: str) -> None:
    row.status = status
    row.reason = reason[:1000]
    row.processed_at = now()
    row.attempts += 1
