# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""Maps the Order aggregate to its rows and back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.money import Money
from contracts.orders import Contact, ScheduledInstallment
from servicekit.db import insert_rows
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters.tables import InstallmentPaymentRow, MilestoneRow, OrderRow
from orders.domain.milestones import Milestone
from orders.domain.model import Order


async def load(session: AsyncSession, row: OrderRow) -> Order:
    milestones = (
        await session.execute(
            select(MilestoneRow).where(MilestoneRow.order_id == row.id).order_by(MilestoneRow.sequence)
        )
    ).scalars()
    paid = (
        await session.execute(
            select(InstallmentPaymentRow.sequence).where(
                InstallmentPaymentRow.order_id == row.id,
                InstallmentPaymentRow.status == "paid",
            )
        )
    ).scalars()
    return Order(
        id=row.id,
        school_id=row.school_id,
        package_code=row.package_code,
        package_version=row.package_version,
        student_count=row.student_count,
        add_ons=list(row.add_ons),
        payment_option=row.payment_option,
        months=row.months,
        currency=row.currency,
        total=Money(amount_minor=row.total_minor, currency=row.currency),
        installments=[ScheduledInstallment.model_validate(i) for i in row.installments],
        contact=Contact.model_validate(row.contact),
        created_by=row.created_by,
        timeline_days=row.timeline_days,
        status=row.status,
        held_from=row.held_from,
        team=list(row.team),
        team_lead=row.team_lead,
        paid_sequences=set(paid),
        milestones=[
            Milestone(
                id=m.id,
                sequence=m.sequence,
                name=m.name,
                due_date=m.due_date,
                status=m.status,
                completed_at=m.completed_at,
            )
            for m in milestones
        ],
        created_at=row.created_at,
    )


def new_row(order: Order, **extra: Any) -> OrderRow:
    now = datetime.now(UTC)
    # Every default_factory field is given: SQLModel's constructor otherwise asks pydantic for each factory's
    # default, and pydantic inspects the factory's signature every time (about a millisecond per order).
    return OrderRow(
        id=order.id,
        team=[],
        created_at=now,
        updated_at=now,
        school_id=order.school_id,
        status=order.status,
        package_code=order.package_code,
        package_version=order.package_version,
        student_count=order.student_count,
        add_ons=list(order.add_ons),
        payment_option=order.payment_option,
        months=order.months,
        currency=order.currency,
        total_minor=order.total.amount_minor,
        installments=[i.model_dump(mode="json") for i in order.installments],
        contact=order.contact.model_dump(mode="json"),
        timeline_days=order.timeline_days,
        created_by=order.created_by,
        **extra,
    )


async def save(session: AsyncSession, order: Order, row: OrderRow) -> None:
    """Write back what the aggregate's behaviour may have changed."""
    now = datetime.now(UTC)
    if row.status != order.status:
        if order.status == "approved" and row.approved_at is None:
            row.approved_at = now
        if order.status in ("completed", "cancelled"):
            row.closed_at = now
    row.status = order.status
    row.held_from = order.held_from
    row.team = list(order.team)
    row.team_lead = order.team_lead
    row.updated_at = now
    existing = {
        m.id: m
        for m in (await session.execute(select(MilestoneRow).where(MilestoneRow.order_id == order.id))).scalars()
    }
    for milestone in order.milestones:
        stored = existing.get(milestone.id)
        if stored is None:
            session.add(
                MilestoneRow(
                    id=milestone.id,
                    order_id=order.id,
                    school_id=order.school_id,
                    sequence=milestone.sequence,
                    name=milestone.name,
                    due_date=milestone.due_date,
                    status=milestone.status,
                    completed_at=milestone.completed_at,
                )
            )
        else:
            stored.status = milestone.status
            stored.completed_at = milestone.completed_at
    await session.flush()


def _values(row: OrderRow | InstallmentPaymentRow) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


async def add_new(session: AsyncSession, row: OrderRow, installments: list[InstallmentPaymentRow]) -> None:
    """Insert a new order and its installments as they are, without the ORM's unit of work.

    Every value is already set (ids too), nothing has to be read back, and nothing else in the transaction
    loads these rows: two plain INSERTs cost a fraction of what a flush that tracks the objects does.
    """
    await insert_rows(session, OrderRow.__table__, [_values(row)])
    await insert_rows(session, InstallmentPaymentRow.__table__, [_values(i) for i in installments])


def installment_rows(order: Order) -> list[InstallmentPaymentRow]:
    now = datetime.now(UTC)
    return [
        InstallmentPaymentRow(
            order_id=order.id,
            school_id=order.school_id,
            sequence=i.sequence,
            amount_minor=i.amount.amount_minor,
            currency=i.amount.currency,
            # Set, not left to the column defaults: a new order's answer is built from these rows as they are.
            installment_id=None,
            status="planned",
            paid_at=None,
            updated_at=now,
        )
        for i in order.installments
    ]


def snapshot(row: OrderRow) -> dict[str, Any]:
    """The audit log's before/after picture of an order."""
    return {
        "status": row.status,
        "held_from": row.held_from,
        "team": list(row.team),
        "team_lead": row.team_lead,
        "contact": row.contact,
        "notes": row.notes,
        "assessment": row.assessment,
        "total_minor": row.total_minor,
        "currency": row.currency,
    }
