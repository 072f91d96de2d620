"""The outbox relay: publishes committed outbox rows to RabbitMQ, at least once, never silently.

- Claims a batch with `FOR UPDATE SKIP LOCKED`, so any number of relay replicas share the work.
- Publishes with publisher confirms and `mandatory`: an unroutable message comes back as an error
  and the row stays pending (with backoff) instead of vanishing.
- Wakes on LISTEN/NOTIFY from the insert trigger; polls slowly as a fallback.
- Consumers are idempotent (inbox), so a crash between publish and marking the row sent only
  causes a harmless duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from faststream.rabbit import RabbitBroker, RabbitExchange
from opentelemetry import context as otel_context
from opentelemetry import propagate
from sqlalchemy import text

from servicekit.db import Database
from servicekit.tables import OUTBOX_CHANNEL

log = logging.getLogger(__name__)

_CLAIM = text(
    """
    SELECT id, event_id, routing_key, body, headers, attempts FROM outbox
    WHERE published_at IS NULL AND available_at <= now()
    ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
    """
)
_MARK_SENT = text("UPDATE outbox SET published_at = now(), last_error = NULL WHERE id = ANY(:ids)")
_MARK_FAILED = text(
    """
    UPDATE outbox SET attempts = attempts + 1, last_error = :error,
           available_at = now() + make_interval(secs => :delay)
    WHERE id = ANY(:ids)
    """
)
_BACKLOG = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox WHERE published_at IS NULL"
)


def backoff_seconds(attempts: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    return float(min(cap, base * 2**attempts))


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        broker: RabbitBroker,
        exchange: RabbitExchange,
        *,
        dsn: str,
        batch_size: int = 200,
        poll_seconds: float = 2.0,
    ) -> None:
        self.db = db
        self.broker = broker
        self.exchange = exchange
        self.dsn = dsn
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.published = 0
        self.failures = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._notify_pending = False
        db.on_outbox_commit(self.wake)

    def wake(self) -> None:
        """A local commit wrote outbox rows: publish now if this process relays, else tell the relays that do.

        With a local relay running, other replicas are not woken: this one publishes what it wrote, and
        waking every replica on every commit cost more (a NOTIFY each, contended claims) than it saved.
        The NOTIFY goes out after the commit, in its own statement, coalesced to one in flight.
        """
        if self._task is not None:
            self._wake.set()
        elif not self._notify_pending:
            self._notify_pending = True
            asyncio.get_running_loop().create_task(self._notify_others())

    async def _notify_others(self) -> None:
        try:
            async with self.db.engine.connect() as conn:
                await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})
                await conn.commit()
        except Exception as exc:  # only a hint: other replicas still poll
            log.debug("outbox notify failed: %s", exc)
        finally:
            self._notify_pending = False

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """Stop after publishing what is already committed (best effort within the timeout)."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, flush_timeout)
            except TimeoutError:
                self._task.cancel()
        await self._close_listener()

    async def backlog(self) -> tuple[int, float]:
        """Unpublished rows and the age in seconds of the oldest: what the metrics report."""
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(_BACKLOG)).one()
        return int(row[0]), float(row[1])

    async def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            # Cleared before claiming: a commit during the claim sets it again, so no wake-up is lost.
            self._wake.clear()
            try:
                await self._ensure_listener()
                sent = await self.publish_once()
            except Exception as exc:  # the database may be restarting: keep going
                log.warning("outbox relay cycle failed: %s", exc)
                await self._close_listener()
                if stopping:
                    return
                await asyncio.sleep(1.0)
                continue
            if stopping and sent < self.batch_size:
                return  # flushed: nothing more ready to go
            if sent >= self.batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def publish_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self.db.transaction() as session:
            rows = (await session.execute(_CLAIM, {"limit": self.batch_size})).all()
            if not rows:
                return 0
            results = await asyncio.gather(*(self._publish(row) for row in rows), return_exceptions=True)
            sent = [row.id for row, result in zip(rows, results, strict=True) if result is None]
            failed = [(row, result) for row, result in zip(rows, results, strict=True) if result is not None]
            if sent:
                await session.execute(_MARK_SENT, {"ids": sent})
            for attempts, group in _group_by_attempts(failed).items():
                error = repr(group[0][1])[:500]
                log.warning("outbox publish failed for %d events: %s", len(group), error)
                await session.execute(
                    _MARK_FAILED,
                    {"ids": [row.id for row, _ in group], "error": error, "delay": backoff_seconds(attempts)},
                )
        self.published += len(sent)
        self.failures += len(failed)
        return len(sent)

    async def _publish(self, row: Any) -> None:
        headers: dict[str, Any] = dict(row.headers or {})
        token = otel_context.attach(propagate.extract(headers))
        try:
            body = row.body if isinstance(row.body, dict) else json.loads(row.body)
            await self.broker.publish(
                body,
                exchange=self.exchange,
                routing_key=row.routing_key,
                message_id=str(row.event_id),
                correlation_id=headers.get("correlation_id"),
                message_type=row.routing_key,
                content_type="application/json",
                persist=True,
                mandatory=True,
                headers={k: v for k, v in headers.items() if k not in ("traceparent", "tracestate")},
                timeout=10.0,
            )
        finally:
            otel_context.detach(token)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())

    async def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                await self._listener.close(timeout=2)
            except Exception:
                self._listener.terminate()
            self._listener = None


def _group_by_attempts(failed: Sequence[tuple[Any, BaseException]]) -> dict[int, list[tuple[Any, Any]]]:
    groups: dict[int, list[tuple[Any, Any]]] = {}
    for row, error in failed:
        groups.setdefault(row.attempts, []).append((row, error))
    return groups
