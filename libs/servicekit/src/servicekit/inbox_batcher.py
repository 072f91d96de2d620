"""Applies the deliveries of one subscription in shared transactions: the consumer's hot path.

A transaction per message spends most of its time on BEGIN/COMMIT round trips and a WAL flush. Under
load many deliveries are in flight at once (prefetch), so whatever has arrived while the previous
transaction committed is applied together: one statement claims every event id in the inbox, the
handlers run one after another in delivery order on the same session, one commit covers them all, and
only then is each delivery acknowledged. Idle, a batch is a single message and nothing waits.

If anything in a batch fails, the batch rolls back and each message is applied again in a transaction
of its own, so a failure is charged to the message that caused it (retry, then park) and the others
go through. Handlers must therefore tolerate running again after a rollback — which they already must,
since a redelivery after a crash does the same.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from contracts.envelope import Envelope
from opentelemetry import context as otel_context

from servicekit import metrics
from servicekit.db import Database
from servicekit.inbox import claim, claim_many

log = logging.getLogger(__name__)


@dataclass
class _Delivery:
    envelope: Envelope[Any]
    trace_context: otel_context.Context = field(default_factory=otel_context.get_current)
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class InboxBatcher:
    """`apply(envelope)` returns True when the handler ran, False for a duplicate; raises what it raised."""

    def __init__(self, db: Database, consumer: str, handler: Any, *, max_batch: int, workers: int = 2) -> None:
        self.db = db
        self.consumer = consumer
        self.handler = handler
        self.max_batch = max(1, max_batch)
        self.workers = workers
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def apply(self, envelope: Envelope[Any]) -> bool:
        if not self._tasks:
            name = f"inbox-{self.consumer}"
            self._tasks = [asyncio.create_task(self._work(), name=name) for _ in range(self.workers)]
        delivery = _Delivery(envelope)
        await self._queue.put(delivery)
        return await delivery.done

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if len(batch) == 1:
                await self._apply_alone(batch[0])
            else:
                await self._apply_together(batch)

    async def _apply_together(self, batch: list[_Delivery]) -> None:
        try:
            applied: list[bool] = []
            async with self.db.transaction() as session:
                claimed = await claim_many(
                    session, self.consumer, [(d.envelope.event_id, d.envelope.event_type) for d in batch]
                )
                for delivery in batch:
                    fresh = delivery.envelope.event_id in claimed
                    claimed.discard(delivery.envelope.event_id)  # the same event twice in one batch runs once
                    if fresh:
                        token = otel_context.attach(delivery.trace_context)
                        try:
                            await self.handler(delivery.envelope, session)
                        finally:
                            otel_context.detach(token)
                    applied.append(fresh)
        except Exception as exc:
            log.info("batch of %d failed (%s); applying each on its own", len(batch), type(exc).__name__)
            for delivery in batch:
                await self._apply_alone(delivery)
            return
        metrics.CONSUMER_BATCH_SIZE.labels(self.consumer).observe(len(batch))
        for delivery, fresh in zip(batch, applied, strict=True):
            _settle(delivery, fresh)

    async def _apply_alone(self, delivery: _Delivery) -> None:
        token = otel_context.attach(delivery.trace_context)
        try:
            fresh = await apply_alone(self.db, self.consumer, self.handler, delivery.envelope)
        except Exception as exc:
            if not delivery.done.done():
                delivery.done.set_exception(exc)
            return
        finally:
            otel_context.detach(token)
        _settle(delivery, fresh)


async def apply_alone(db: Database, consumer: str, handler: Any, envelope: Envelope[Any]) -> bool:
    """One delivery in a transaction of its own: True when the handler ran, False for a duplicate."""
    async with db.transaction() as session:
        if not await claim(session, consumer, envelope.event_id, envelope.event_type):
            return False
        await handler(envelope, session)
    metrics.CONSUMER_BATCH_SIZE.labels(consumer).observe(1)
    return True


def _settle(delivery: _Delivery, fresh: bool) -> None:
    if not delivery.done.done():  # the delivery's consumer may have been cancelled meanwhile
        delivery.done.set_result(fresh)
