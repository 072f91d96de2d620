"""Use cases around payment plans: build one from an order, follow the order's life, read it back."""

from datetime import UTC, date, datetime
from uuid import UUID

from contracts.envelope import Envelope
from contracts.money import Money
from contracts.orders import OrderCancelled, OrderCreated, OrderStatusChanged
from contracts.payments import InstallmentDue, PaymentPlanCreated, PlannedInstallment
from servicekit.auth import Principal
from servicekit.errors import PermanentError
from servicekit.outbox import add_event
from servicekit.problems import Problem
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from payments.adapters.tables import InstallmentRow, PlanRow, now
from payments.domain.errors import InvalidPlan
from payments.domain.plans import plan_for
from payments.service_layer.events import follow_up


def today() -> date:
    return datetime.now(UTC).date()


async def create_plan(session: AsyncSession, envelope: Envelope[OrderCreated]) -> PlanRow | None:
    """Build and store the plan; the event goes out through the outbox in the same transaction."""
    order = envelope.data
    existing = await session.scalar(select(PlanRow).where(PlanRow.order_id == order.order_id))
    if existing is not None:
        return None  # another delivery of the same order under a new event id: the plan stands
    try:
        specs = plan_for(order, today())
    except InvalidPlan as exc:
        raise PermanentError(f"order {order.order_id}: {exc}") from exc
    plan = PlanRow(
        order_id=order.order_id,
        school_id=order.school_id,
        payment_option=order.payment_option,
        currency=order.total.currency,
        total_minor=order.total.amount_minor,
        contact=order.contact.model_dump(mode="json"),
    )
    session.add(plan)
    await session.flush()
    rows = [
        InstallmentRow(
            plan_id=plan.id,
            order_id=plan.order_id,
            school_id=plan.school_id,
            sequence=s.sequence,
            label=s.label,
            amount_minor=s.amount_minor,
            currency=plan.currency,
            due=s.due,
            due_date=s.due_date,
        )
        for s in specs
    ]
    session.add_all(rows)
    await session.flush()
    event = PaymentPlanCreated(
        plan_id=plan.id,
        order_id=plan.order_id,
        school_id=plan.school_id,
        payment_option=order.payment_option,
        total=order.total,
        installments=[_planned(row) for row in rows],
    )
    await add_event(session, follow_up(envelope, event))
    return plan


def _planned(row: InstallmentRow) -> PlannedInstallment:
    return PlannedInstallment(
        installment_id=row.id,
        sequence=row.sequence,
        label=row.label,
        amount=Money(amount_minor=row.amount_minor, currency=row.currency),
        due=row.due,
        due_date=row.due_date,
    )


class PlanNotYetCreated(RuntimeError):
    """An order's status event that overtook its order_created (each event type has its own queue): the
    consumer retries it, by which time the plan exists, instead of changing nothing and being done."""


async def _require_plan(session: AsyncSession, order_id: UUID) -> None:
    if await session.scalar(select(PlanRow.id).where(PlanRow.order_id == order_id)) is None:
        raise PlanNotYetCreated(f"no payment plan for order {order_id} yet")


async def on_status_changed(session: AsyncSession, envelope: Envelope[OrderStatusChanged]) -> None:
    change = envelope.data
    if change.to_status == "go_live":
        await _require_plan(session, change.order_id)
        await _go_live(session, envelope)
    elif change.to_status == "cancelled":
        await _require_plan(session, change.order_id)
        await cancel_open_installments(session, change.order_id)


async def on_cancelled(session: AsyncSession, envelope: Envelope[OrderCancelled]) -> None:
    await _require_plan(session, envelope.data.order_id)
    await cancel_open_installments(session, envelope.data.order_id)


async def _go_live(session: AsyncSession, envelope: Envelope[OrderStatusChanged]) -> None:
    """The split plan's second half falls due when the order goes live."""
    rows = (
        await session.scalars(
            select(InstallmentRow)
            .where(
                InstallmentRow.order_id == envelope.data.order_id,
                InstallmentRow.due == "at_go_live",
                InstallmentRow.status == "open",
                col(InstallmentRow.due_announced_at).is_(None),
            )
            .with_for_update()
        )
    ).all()
    for row in rows:
        row.due_date = today()
        row.due_announced_at = now()
        await add_event(session, follow_up(envelope, installment_due(row)))


def installment_due(row: InstallmentRow) -> InstallmentDue:
    assert row.due_date is not None
    return InstallmentDue(
        installment_id=row.id,
        order_id=row.order_id,
        school_id=row.school_id,
        sequence=row.sequence,
        amount=Money(amount_minor=row.amount_minor, currency=row.currency),
        due_date=row.due_date,
    )


async def cancel_open_installments(session: AsyncSession, order_id: UUID) -> None:
    await session.execute(
        update(InstallmentRow)
        .where(col(InstallmentRow.order_id) == order_id, col(InstallmentRow.status) == "open")
        .values(status="cancelled")
    )
    await session.execute(
        update(PlanRow)
        .where(col(PlanRow.order_id) == order_id, col(PlanRow.status) == "active")
        .values(status="cancelled")
    )


def authorize_school(principal: Principal, school_id: UUID, what: str) -> None:
    """Platform admins see everything; a school admin only their school (404: we do not say it exists)."""
    if principal.is_platform_admin:
        return
    if principal.role == "school_admin" and principal.school_id == school_id:
        return
    raise Problem(404, "Not found", f"{what} does not exist.")


async def get_plan(session: AsyncSession, principal: Principal, order_id: UUID) -> tuple[PlanRow, list[InstallmentRow]]:
    plan = await session.scalar(select(PlanRow).where(PlanRow.order_id == order_id))
    if plan is None:
        raise Problem(404, "Not found", f"No payment plan for order {order_id}.")
    authorize_school(principal, plan.school_id, f"A payment plan for order {order_id}")
    installments = (
        await session.scalars(
            select(InstallmentRow).where(InstallmentRow.plan_id == plan.id).order_by(col(InstallmentRow.sequence))
        )
    ).all()
    return plan, list(installments)
