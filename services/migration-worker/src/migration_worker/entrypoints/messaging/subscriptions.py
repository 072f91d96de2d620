"""What the migration worker listens to: one command. The handler only records the job (inbox-idempotent,
same transaction); the scheduler loop runs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.envelope import Envelope
from contracts.migrations import StartJob
from servicekit.consumer import Subscription
from servicekit.errors import PermanentError
from sqlalchemy.ext.asyncio import AsyncSession

from migration_worker.service_layer.handlers import MigrationService, UnknownPlan, accept_start_job

CONSUMER = "migrations"


def subscriptions(service: MigrationService, wake: Callable[[], None]) -> list[Subscription[Any]]:
    async def start_job(envelope: Envelope[StartJob], session: AsyncSession) -> None:
        try:
            await accept_start_job(service, session, envelope.data)
        except (UnknownPlan, ValueError) as exc:
            raise PermanentError(str(exc)) from exc
        wake()

    return [Subscription(CONSUMER, StartJob, start_job)]
