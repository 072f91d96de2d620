# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""Keep what other services tell us: payments per installment, migration jobs, the communication log.

Each function runs inside the consumer's inbox transaction, so a redelivered event changes nothing twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from contracts.migrations import DryRunCompleted, JobCompleted, JobFailed, JobProgress
from contracts.payments import InstallmentOverdue, PaymentFailed, PaymentPlanCreated, PaymentRefunded, PaymentSucceeded
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col

from orders.adapters import order_repository as repository
from orders.adapters.tables import (
    CommunicationLogRow,
    InstallmentPaymentRow,
    MigrationJobRow,
    OrderRow,
    PaymentReceivedRow,
)
from orders.domain.milestones import DATA_MIGRATION_MILESTONE
from orders.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


async def _order_exists(uow: UnitOfWork, order_id: UUID | None) -> bool:
    if order_id is None:
        return False
    return (await uow.session.execute(select(OrderRow.id).where(OrderRow.id == order_id))).first() is not None


async def payment_plan_created(uow: UnitOfWork, event: PaymentPlanCreated) -> None:
    if not await _order_exists(uow, event.order_id):
        log.warning("payment plan for unknown order %s ignored", event.order_id)
        return
    for planned in event.installments:
        statement = insert(InstallmentPaymentRow).values(
            order_id=event.order_id,
            school_id=event.school_id,
            sequence=planned.sequence,
            installment_id=planned.installment_id,
            amount_minor=planned.amount.amount_minor,
            currency=planned.amount.currency,
            status="planned",
            updated_at=datetime.now(UTC),
        )
        await uow.session.execute(
            statement.on_conflict_do_update(
                index_elements=["order_id", "sequence"],
                set_={"installment_id": planned.installment_id, "updated_at": statement.excluded.updated_at},
            )
        )


async def payment_succeeded(uow: UnitOfWork, event: PaymentSucceeded, occurred_at: datetime) -> None:
    if not await _order_exists(uow, event.order_id):
        log.warning("payment for unknown order %s ignored", event.order_id)
        return
    await uow.session.execute(
        update(InstallmentPaymentRow)
        .where(
            InstallmentPaymentRow.order_id == event.order_id,
            InstallmentPaymentRow.sequence == event.installment_sequence,
        )
        .values(status="paid", paid_at=occurred_at, installment_id=event.installment_id, updated_at=datetime.now(UTC))
    )
    await uow.session.execute(
        insert(PaymentReceivedRow)
        .values(
            payment_id=event.payment_id,
            order_id=event.order_id,
            school_id=event.school_id,
            amount_minor=event.amount.amount_minor,
            currency=event.amount.currency,
            provider=event.provider,
            received_at=occurred_at,
        )
        .on_conflict_do_nothing(index_elements=["payment_id"])
    )


class PlanNotYetKnown(RuntimeError):
    """An installment event that arrived before payments' plan (each event type has its own queue): the
    consumer retries it, by which time the plan has named the installments."""


async def _installment_status(uow: UnitOfWork, installment_id: UUID, status: str, error: str | None) -> int:
    result = await uow.session.execute(
        update(InstallmentPaymentRow)
        .where(InstallmentPaymentRow.installment_id == installment_id, InstallmentPaymentRow.status != "paid")
        .values(status=status, last_error=error, updated_at=datetime.now(UTC))
    )
    return int(result.rowcount)


async def payment_failed(uow: UnitOfWork, event: PaymentFailed) -> None:
    if await _installment_status(uow, event.installment_id, "failed", event.reason):
        return
    unnamed = await uow.session.scalar(
        select(func.count())
        .select_from(InstallmentPaymentRow)
        .where(InstallmentPaymentRow.order_id == event.order_id, col(InstallmentPaymentRow.installment_id).is_(None))
    )
    if unnamed:
        raise PlanNotYetKnown(f"installment {event.installment_id} of order {event.order_id} is not known yet")


async def installment_overdue(uow: UnitOfWork, event: InstallmentOverdue) -> None:
    # Carries its sequence, so it names the installment even before the plan event did.
    await uow.session.execute(
        update(InstallmentPaymentRow)
        .where(
            InstallmentPaymentRow.order_id == event.order_id,
            InstallmentPaymentRow.sequence == event.sequence,
            InstallmentPaymentRow.status != "paid",
        )
        .values(
            status="overdue",
            last_error=f"{event.days_overdue} days overdue",
            installment_id=event.installment_id,
            updated_at=datetime.now(UTC),
        )
    )


async def payment_refunded(uow: UnitOfWork, event: PaymentRefunded, occurred_at: datetime) -> None:
    """A refund counts against revenue: recorded as a negative receipt keyed by the refund."""
    if not await _order_exists(uow, event.order_id):
        return
    await uow.session.execute(
        insert(PaymentReceivedRow)
        .values(
            payment_id=event.refund_id,
            order_id=event.order_id,
            school_id=event.school_id,
            amount_minor=-event.amount.amount_minor,
            currency=event.amount.currency,
            provider="refund",
            received_at=occurred_at,
        )
        .on_conflict_do_nothing(index_elements=["payment_id"])
    )


async def _job(uow: UnitOfWork, job_id: UUID, order_id: UUID | None) -> MigrationJobRow | None:
    job = await uow.session.get(MigrationJobRow, job_id, with_for_update=True)
    if job is None and order_id is not None and await _order_exists(uow, order_id):
        order = await uow.session.get(OrderRow, order_id)
        assert order is not None
        job = MigrationJobRow(job_id=job_id, order_id=order_id, school_id=order.school_id, status="running")
        uow.session.add(job)
    if job is None:
        log.warning("event for unknown migration job %s ignored", job_id)
    return job


async def job_progress(uow: UnitOfWork, event: JobProgress) -> None:
    job = await _job(uow, event.job_id, event.order_id)
    if job is None or job.status in ("completed", "failed"):
        return  # progress arriving after the final report must not reopen the job
    job.status, job.phase, job.percent = "running", event.phase, event.percent
    job.rows_done, job.rows_total = event.rows_done, event.rows_total
    job.updated_at = datetime.now(UTC)


async def dry_run_completed(uow: UnitOfWork, event: DryRunCompleted) -> None:
    job = await _job(uow, event.job_id, event.order_id)
    if job is None:
        return
    job.report = {**(job.report or {}), "dry_run": event.model_dump(mode="json")}
    job.updated_at = datetime.now(UTC)


async def job_completed(uow: UnitOfWork, event: JobCompleted) -> None:
    job = await _job(uow, event.job_id, event.order_id)
    if job is None:
        return
    job.status, job.percent, job.phase = "completed", 100, "report"
    job.rows_done, job.rows_total = event.rows_migrated, event.rows_total
    job.report = {**(job.report or {}), "final": event.model_dump(mode="json")}
    job.updated_at = datetime.now(UTC)
    await _complete_migration_milestone(uow, job.order_id)


async def job_failed(uow: UnitOfWork, event: JobFailed) -> None:
    job = await _job(uow, event.job_id, event.order_id)
    if job is None:
        return
    job.status, job.reason, job.phase = "failed", event.reason, event.phase
    job.updated_at = datetime.now(UTC)


async def _complete_migration_milestone(uow: UnitOfWork, order_id: UUID) -> None:
    """The worker's final report is what the Data Migration milestone waits for."""
    row = await uow.session.get(OrderRow, order_id, with_for_update=True)
    if row is None:
        return
    order = await repository.load(uow.session, row)
    milestone = next((m for m in order.milestones if m.sequence == DATA_MIGRATION_MILESTONE), None)
    if milestone is None or milestone.status == "completed":
        return
    order.complete_milestone(milestone.id)
    await repository.save(uow.session, order, row)
    for event in order.events:
        await uow.publish(event, school_id=order.school_id)


async def communication(
    uow: UnitOfWork, *, event_type: str, payload: Any, status: str, detail: str | None, occurred_at: datetime
) -> None:
    order_id = getattr(payload, "order_id", None)
    if not await _order_exists(uow, order_id):
        return
    order = await uow.session.get(OrderRow, order_id)
    assert order is not None
    await uow.session.execute(
        insert(CommunicationLogRow)
        .values(
            message_id=payload.message_id,
            event_type=event_type,
            order_id=order_id,
            school_id=order.school_id,
            channel=payload.channel,
            template=getattr(payload, "template", None),
            status=status,
            detail=detail,
            occurred_at=occurred_at,
        )
        .on_conflict_do_nothing()
    )
