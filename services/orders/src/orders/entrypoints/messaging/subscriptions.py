"""What the orders service listens to. Each handler only translates an event into a read-model use case."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from contracts.envelope import Envelope, Payload
from contracts.migrations import DryRunCompleted, JobCompleted, JobFailed, JobProgress
from contracts.notifications import NotificationDelivered, NotificationFailed, NotificationSent
from contracts.payments import InstallmentOverdue, PaymentFailed, PaymentPlanCreated, PaymentRefunded, PaymentSucceeded
from servicekit.consumer import Subscription
from sqlalchemy.ext.asyncio import AsyncSession

from orders.service_layer import read_models
from orders.service_layer.unit_of_work import SYSTEM, UnitOfWork

CONSUMER = "orders"
P = TypeVar("P", bound=Payload)


def _on(message: type[P], use_case: Callable[[UnitOfWork, Envelope[P]], Awaitable[None]]) -> Subscription[P]:
    async def handle(envelope: Envelope[P], session: AsyncSession) -> None:
        uow = await UnitOfWork(session, SYSTEM, causation=envelope).begin()
        await use_case(uow, envelope)

    return Subscription(CONSUMER, message, handle)


def _notification(status: str) -> Callable[[UnitOfWork, Envelope[Any]], Awaitable[None]]:
    async def record(uow: UnitOfWork, e: Envelope[Any]) -> None:
        detail = getattr(e.data, "reason", None) or getattr(e.data, "provider", None)
        await read_models.communication(
            uow, event_type=e.event_type, payload=e.data, status=status, detail=detail, occurred_at=e.occurred_at
        )

    return record


SUBSCRIPTIONS: list[Subscription[Any]] = [
    _on(PaymentPlanCreated, lambda uow, e: read_models.payment_plan_created(uow, e.data)),
    _on(PaymentSucceeded, lambda uow, e: read_models.payment_succeeded(uow, e.data, e.occurred_at)),
    _on(PaymentFailed, lambda uow, e: read_models.payment_failed(uow, e.data)),
    _on(PaymentRefunded, lambda uow, e: read_models.payment_refunded(uow, e.data, e.occurred_at)),
    _on(InstallmentOverdue, lambda uow, e: read_models.installment_overdue(uow, e.data)),
    _on(JobProgress, lambda uow, e: read_models.job_progress(uow, e.data)),
    _on(DryRunCompleted, lambda uow, e: read_models.dry_run_completed(uow, e.data)),
    _on(JobCompleted, lambda uow, e: read_models.job_completed(uow, e.data)),
    _on(JobFailed, lambda uow, e: read_models.job_failed(uow, e.data)),
    _on(NotificationSent, _notification("sent")),
    _on(NotificationDelivered, _notification("delivered")),
    _on(NotificationFailed, _notification("failed")),
]
