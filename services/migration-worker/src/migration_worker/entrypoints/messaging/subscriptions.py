"""What the migration worker listens to: two commands.

`start_job` only records the job (inbox-idempotent, same transaction); the job loop runs it.
`load_batch` loads one batch of a running job: every replica consumes the same queue, so a job's batches
spread over all of them; the batch's checkpoint makes a redelivery a no-op."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.envelope import Envelope
from contracts.migrations import LoadBatch, StartJob
from servicekit.consumer import Subscription
from servicekit.errors import PermanentError
from sqlalchemy.ext.asyncio import AsyncSession

from migration_worker.adapters.jobstore import JobNotFound
from migration_worker.service_layer.batches import BatchWorker
from migration_worker.service_layer.handlers import MigrationService, UnknownPlan, accept_start_job

CONSUMER = "migrations"


def subscriptions(
    service: MigrationService, wake: Callable[[], None], batches: BatchWorker | None = None
) -> list[Subscription[Any]]:
    async def start_job(envelope: Envelope[StartJob], session: AsyncSession) -> None:
        try:
            await accept_start_job(service, session, envelope.data)
        except (UnknownPlan, ValueError) as exc:
            raise PermanentError(str(exc)) from exc
        wake()

    subs: list[Subscription[Any]] = [Subscription(CONSUMER, StartJob, start_job)]
    if batches is not None:
        worker = batches

        async def load_batch(envelope: Envelope[LoadBatch], session: AsyncSession) -> None:
            # Any failure (lock still held by a dying replica, database hiccup) is retried through the
            # delay queues; the coordinator loads what is parked itself after batch_stall_seconds.
            try:
                await worker.load(envelope.data)
            except JobNotFound as exc:
                raise PermanentError(str(exc)) from exc

        # Each delivery in its own inbox transaction: a batch runs for seconds and writes to the target
        # database, so it must not share (and be replayed with) other deliveries' transactions.
        subs.append(Subscription(CONSUMER, LoadBatch, load_batch, batch=False))
    return subs
