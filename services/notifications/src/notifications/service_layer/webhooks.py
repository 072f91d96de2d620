"""The platform's outbound webhooks: fan-out of events to registered endpoints, delivery with retries.

Fan-out runs in the consumer's inbox transaction (one delivery row per endpoint and event, so a
redelivered event adds nothing). The deliverer posts outside any transaction, logs every attempt,
retries on the configured schedule, and disables an endpoint that keeps failing, telling its owner.
"""

import asyncio
import json
import logging
import secrets
from base64 import b64encode
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

import httpx
from contracts.envelope import Envelope
from servicekit.db import Database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters import repository
from notifications.adapters.crypto import PiiVault
from notifications.adapters.repository import Recipient
from notifications.adapters.webhook_client import post
from notifications.domain.ssrf import UnsafeTarget, check_target
from notifications.service_layer.planning import MessageSpec, Planner
from notifications.service_layer.worker import NotifiedWorker
from notifications.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_CHANNEL = "notifications_webhooks"
_OWNER_NOTICE_NAMESPACE = UUID("0b7a4c36-5f0e-4d7e-9a53-5e2f4c1f6a10")


def new_secret() -> str:
    return "whsec_" + b64encode(secrets.token_bytes(24)).decode()


def event_payload(envelope: Envelope[Any]) -> dict[str, Any]:
    """The body third parties receive: the Standard Webhooks `type/timestamp/data` shape."""
    return {
        "type": envelope.event_type,
        "timestamp": envelope.occurred_at.isoformat(),
        "event_id": str(envelope.event_id),
        "school_id": str(envelope.school_id) if envelope.school_id else None,
        "data": envelope.data.model_dump(mode="json"),
    }


async def fan_out(envelope: Envelope[Any], session: AsyncSession) -> None:
    school_id = getattr(envelope.data, "school_id", None) or envelope.school_id
    result = await session.execute(
        text(
            """
            INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts,
                                            next_attempt_at, created_at, updated_at)
            SELECT gen_random_uuid(), e.id, :event_id, :event_type, CAST(:payload AS jsonb), 'pending', 0,
                   now(), now(), now()
            FROM webhook_endpoints e
            WHERE e.enabled AND NOT e.deleted
              AND (e.event_types @> CAST(:event_json AS jsonb) OR e.event_types @> '"*"'::jsonb)
              AND (e.school_id IS NULL OR e.school_id = :school_id)
            ON CONFLICT ON CONSTRAINT uq_webhook_deliveries_endpoint_event DO NOTHING
            """
        ),
        {
            "event_id": envelope.event_id,
            "event_type": envelope.event_type,
            "event_json": json.dumps(envelope.event_type),
            "payload": json.dumps(event_payload(envelope)),
            "school_id": school_id,
        },
    )
    if getattr(result, "rowcount", 0):
        await session.execute(text("SELECT pg_notify(:c, '')"), {"c": WEBHOOK_CHANNEL})


_CLAIM = text(
    """
    UPDATE webhook_deliveries d SET status = 'sending', lease_until = now() + make_interval(secs => :lease),
                                    updated_at = now()
    WHERE d.id IN (
        SELECT id FROM webhook_deliveries
        WHERE (status = 'pending' AND next_attempt_at <= now()) OR (status = 'sending' AND lease_until < now())
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.endpoint_id, d.payload, d.attempts, d.event_type
    """
)


class WebhookDeliverer(NotifiedWorker):
    def __init__(
        self,
        db: Database,
        vault: PiiVault,
        planner: Planner,
        settings: Settings,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(
            dsn=settings.database_dsn,
            channel=WEBHOOK_CHANNEL,
            poll_seconds=settings.dispatcher_poll_seconds,
            name="webhook-deliverer",
        )
        self.db, self.vault, self.planner, self.settings, self.http = db, vault, planner, settings, http
        self.clock = clock
        self._limit = asyncio.Semaphore(settings.dispatcher_concurrency)

    async def work_once(self) -> int:
        async with self.db.transaction() as session:
            rows = (
                (
                    await session.execute(
                        _CLAIM,
                        {"lease": self.settings.dispatch_lease_seconds, "limit": self.settings.dispatcher_batch_size},
                    )
                )
                .mappings()
                .all()
            )
        await asyncio.gather(*(self._deliver(dict(r)) for r in rows))
        return len(rows)

    async def _deliver(self, row: dict[str, Any]) -> None:
        async with self._limit:
            async with self.db.engine.connect() as conn:
                endpoint = (
                    await conn.execute(
                        text("SELECT url, secret_enc, enabled, deleted FROM webhook_endpoints WHERE id = :id"),
                        {"id": row["endpoint_id"]},
                    )
                ).first()
            if endpoint is None or not endpoint.enabled or endpoint.deleted:
                await self._finish(row, "failed", None, "endpoint disabled or deleted", 0, count=False)
                return
            try:
                await asyncio.to_thread(check_target, endpoint.url, allow_private=self.settings.allow_private_targets)
            except UnsafeTarget as exc:
                await self._finish(row, "failed", None, f"blocked target: {exc}", 0)
                return
            result = await post(
                self.http, endpoint.url, self.vault.decrypt(endpoint.secret_enc), f"msg_{row['id'].hex}", row["payload"]
            )
            if result.ok:
                await self._finish(row, "succeeded", result.status_code, None, result.duration_ms)
            else:
                await self._finish(row, "retry", result.status_code, result.error, result.duration_ms)

    async def _finish(
        self, row: dict[str, Any], outcome: str, status_code: int | None, error: str | None, ms: int, count: bool = True
    ) -> None:
        now = self.clock()
        attempt = row["attempts"] + 1
        schedule = self.settings.webhook_retry_schedule_s
        async with self.db.transaction() as session:
            if count:
                await session.execute(
                    text(
                        "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms, "
                        "attempted_at) VALUES (:d, :a, :s, :e, :ms, :at)"
                    ),
                    {"d": row["id"], "a": attempt, "s": status_code, "e": error, "ms": ms, "at": now},
                )
            if outcome == "succeeded":
                status, due = "succeeded", now
                await session.execute(
                    text("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = :id"), {"id": row["endpoint_id"]}
                )
            elif outcome == "retry" and attempt < len(schedule):
                status, due = "pending", now + timedelta(seconds=schedule[attempt])
            else:
                status, due = "failed", now
            await session.execute(
                text(
                    "UPDATE webhook_deliveries SET status = :st, attempts = :a, next_attempt_at = :due, "
                    "lease_until = NULL, last_status_code = :s, last_error = :e, updated_at = :now WHERE id = :id"
                ),
                {"st": status, "a": attempt, "due": due, "s": status_code, "e": error, "now": now, "id": row["id"]},
            )
            if outcome != "succeeded" and count:
                await self._note_failure(session, row["endpoint_id"], now)

    async def _note_failure(self, session: AsyncSession, endpoint_id: UUID, now: datetime) -> None:
        endpoint = (
            await session.execute(
                # A failure starts a streak, or continues one if the endpoint was being tried meanwhile: after
                # a quiet spell longer than the longest retry gap (no traffic, no evidence) a streak starts anew.
                text(
                    "UPDATE webhook_endpoints SET failing_since = CASE WHEN failing_since IS NULL "
                    "OR coalesce((SELECT max(a.attempted_at) FROM webhook_attempts a "
                    "JOIN webhook_deliveries d ON d.id = a.delivery_id "
                    "WHERE d.endpoint_id = :id AND a.attempted_at < :now), '-infinity') < :quiet_before "
                    "THEN :now ELSE failing_since END WHERE id = :id "
                    "RETURNING failing_since, enabled, url, owner_email_enc, school_id"
                ),
                {
                    "now": now,
                    "id": endpoint_id,
                    "quiet_before": now - timedelta(seconds=max(self.settings.webhook_retry_schedule_s, default=0)),
                },
            )
        ).first()
        if endpoint is None or not endpoint.enabled:
            return
        if (now - endpoint.failing_since).total_seconds() < self.settings.webhook_disable_after_s:
            return
        since = endpoint.failing_since.isoformat(timespec="minutes")
        await session.execute(
            text("UPDATE webhook_endpoints SET enabled = false, disabled_reason = :r WHERE id = :id"),
            {"r": f"failing since {since}", "id": endpoint_id},
        )
        log.warning("webhook endpoint %s disabled: failing since %s", endpoint_id, since)
        owner = self.vault.decrypt(endpoint.owner_email_enc) if endpoint.owner_email_enc else None
        await self._tell_owner(session, endpoint_id, endpoint.url, since, owner or self.settings.platform_ops_email)

    async def _tell_owner(self, session: AsyncSession, endpoint_id: UUID, url: str, since: str, email: str) -> None:
        """An e-mail through the normal message path, idempotent per endpoint and disabling."""
        spec = MessageSpec(
            event_id=uuid5(_OWNER_NOTICE_NAMESPACE, f"{endpoint_id}:{since}"),
            event_type="notifications.webhook_endpoint_disabled",
            template="webhook_endpoint_disabled",
            variables={"url": url, "since": since},
            channels=("email",),
            urgent=True,
        )
        owner = Recipient(school_id=UUID(int=0), name="webhook owner", language="en", phone=None, email=email)
        rows = await self.planner.build_rows(session, spec, [owner])
        for r in rows:
            r["school_id"] = None
        await repository.insert_messages(session, rows)
