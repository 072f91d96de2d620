"""The outbox relay: publishes committed outbox rows to RabbitMQ, at least once, never silently.

- Claims a batch with `FOR UPDATE SKIP LOCKED`, so any number of relay replicas share the work. The claim marks
  the rows sent in the same statement; the transaction stays open while they are published, so a crash or a
  failed publish rolls the mark back (or records the error) and the rows are tried again.
- Publishes with publisher confirms and `mandatory`: an unroutable message comes back as an error
  and the row stays pending (with backoff) instead of vanishing.
- Wakes on a local commit, on LISTEN/NOTIFY from other processes, and polls slowly as a fallback; under a
  steady stream of commits it lingers a few milliseconds between claims so each claim takes a batch.
- Each message carries the trace context its producing transaction stored, so consumers continue the request's
  trace; each batch is one producer span of its own.
- Consumers are idempotent (inbox), so a crash between publish and commit only causes a harmless duplicate.

It talks to PostgreSQL and RabbitMQ on its own connections (asyncpg, aio-pika) rather than through the ORM and
FastStream: one claim statement and one confirm per message is all a cycle needs, and the generic layers cost
three times the CPU per event (measured, `docs/benchmarks.md`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import aio_pika
import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import text

from servicekit import metrics
from servicekit.db import Database
from servicekit.tables import OUTBOX_CHANNEL

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Claim and mark in one statement; RETURNING gives no order, so rows are sorted by id afterwards.
_CLAIM = """
    UPDATE outbox SET published_at = now(), last_error = NULL
    WHERE id IN (
        SELECT id FROM outbox WHERE published_at IS NULL AND available_at <= now()
        ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, event_id, routing_key, body::text AS body, headers::text AS headers, attempts
"""
_MARK_FAILED = """
    UPDATE outbox SET published_at = NULL, attempts = attempts + 1, last_error = $2,
           available_at = now() + make_interval(secs => $3)
    WHERE id = ANY($1::bigint[])
"""
_BACKLOG = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox WHERE published_at IS NULL"
)


def backoff_seconds(attempts: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    return float(min(cap, base * 2**attempts))


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        *,
        dsn: str,
        amqp_url: str,
        exchange: str,
        app_id: str,
        batch_size: int = 200,
        poll_seconds: float = 2.0,
        linger_seconds: float = 0.0,
    ) -> None:
        self.db = db
        self.dsn = dsn
        self.amqp_url = amqp_url
        self.exchange_name = exchange
        self.app_id = app_id
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self.published = 0
        self.failures = 0
        self.batches = 0  # claims that found rows
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pg: asyncpg.Connection | None = None  # claims, and LISTENs for other processes' commits
        self._amqp: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._notify_pending = False
        self._one_cycle = asyncio.Lock()  # the claim connection runs one transaction at a time
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
            self._task = None
        await self._close_postgres()
        await self._close_broker()

    async def backlog(self) -> tuple[int, float]:
        """Unpublished rows and the age in seconds of the oldest: what the metrics report."""
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(_BACKLOG)).one()
        return int(row[0]), float(row[1])

    async def _run(self) -> None:
        last_cycle = -1e9
        while True:
            # Cycles at most one linger apart: under a steady stream of commits each claim takes several rows
            # (one claim, one confirm wait, one commit for all) instead of one each; an idle relay answers a
            # wake-up at once.
            if not self._stopping.is_set():
                await asyncio.sleep(max(0.0, last_cycle + self.linger_seconds - time.monotonic()))
            last_cycle = time.monotonic()
            stopping = self._stopping.is_set()
            # Cleared before claiming: a commit during the claim sets it again, so no wake-up is lost.
            self._wake.clear()
            try:
                sent = await self.publish_once()
            except Exception as exc:  # the database may be restarting: keep going
                log.warning("outbox relay cycle failed: %s", exc)
                await self._close_postgres()
                if stopping:
                    return
                await asyncio.sleep(1.0)
                continue
            if stopping and sent < self.batch_size:
                return  # flushed: nothing more ready to go
            if sent >= self.batch_size:
                last_cycle = -1e9  # a full batch: more is waiting, no point lingering
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def publish_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self._one_cycle:
            return await self._publish_batch()

    async def _publish_batch(self) -> int:
        pg = await self._postgres()
        exchange = await self._broker()
        async with pg.transaction():
            rows = sorted(await pg.fetch(_CLAIM, self.batch_size), key=lambda row: row["id"])
            if not rows:
                return 0
            with tracer.start_as_current_span(
                f"{self.exchange_name} publish", kind=SpanKind.PRODUCER, attributes={"messaging.batch.size": len(rows)}
            ) as span:
                results = await asyncio.gather(*(self._publish(exchange, row) for row in rows), return_exceptions=True)
                failed = [(row, result) for row, result in zip(rows, results, strict=True) if result is not None]
                if failed:
                    span.set_status(Status(StatusCode.ERROR, f"{len(failed)} of {len(rows)} not published"))
            for attempts, group in _group_by_attempts(failed).items():
                error = repr(group[0][1])[:500]
                log.warning("outbox publish failed for %d events: %s", len(group), error)
                await pg.execute(_MARK_FAILED, [row["id"] for row, _ in group], error, backoff_seconds(attempts))
        sent = len(rows) - len(failed)
        self.batches += 1
        self.published += sent
        self.failures += len(failed)
        metrics.OUTBOX_PUBLISHED.inc(sent)
        return sent

    async def _publish(self, exchange: aio_pika.abc.AbstractExchange, row: asyncpg.Record) -> None:
        # The headers carry the trace context the producing transaction stored: the consumer's span continues
        # that trace directly.
        headers: dict[str, Any] = json.loads(row["headers"])
        routing_key: str = row["routing_key"]
        message = aio_pika.Message(
            row["body"].encode(),
            message_id=str(row["event_id"]),
            correlation_id=headers.get("correlation_id"),
            type=routing_key,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            app_id=self.app_id,
            headers=headers,
        )
        await exchange.publish(message, routing_key, mandatory=True, timeout=10.0)

    async def _postgres(self) -> asyncpg.Connection:
        if self._pg is None or self._pg.is_closed():
            self._pg = await asyncpg.connect(self.dsn)
            await self._pg.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
        return self._pg

    async def _broker(self) -> aio_pika.abc.AbstractExchange:
        if self._amqp is None:
            self._amqp = await aio_pika.connect_robust(self.amqp_url)
        if self._exchange is None:
            channel = await self._amqp.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await channel.get_exchange(self.exchange_name, ensure=False)
        return self._exchange

    async def _close_postgres(self) -> None:
        if self._pg is not None:
            try:
                await self._pg.close(timeout=2)
            except Exception:
                self._pg.terminate()
            self._pg = None

    async def _close_broker(self) -> None:
        if self._amqp is not None:
            with contextlib.suppress(Exception):
                await self._amqp.close()
            self._amqp, self._exchange = None, None


def _group_by_attempts(failed: Sequence[tuple[asyncpg.Record, BaseException]]) -> dict[int, list[tuple[Any, Any]]]:
    groups: dict[int, list[tuple[Any, Any]]] = {}
    for row, error in failed:
        groups.setdefault(row["attempts"], []).append((row, error))
    return groups
