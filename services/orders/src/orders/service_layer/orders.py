# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""Order use cases: place (idempotently), read, amend, move through the lifecycle, staff."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

from contracts.migrations import DataSource, StartJob
from servicekit.problems import Problem
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters import order_repository as repository
from orders.adapters.tables import DataSourceRow, InstallmentPaymentRow, MigrationJobRow, OrderRow
from orders.domain.lifecycle import Override
from orders.domain.model import Order
from orders.service_layer.access import order_visible, require_admin, school_for, visible_order
from orders.service_layer.commands import AssignTeam, ChangeStatus, PlaceOrder, UpdateOrder
from orders.service_layer.pricing import price_request, quote_body
from orders.service_layer.unit_of_work import UnitOfWork


async def place_order(
    uow: UnitOfWork, command: PlaceOrder, *, idempotency_key: str | None, today: date
) -> tuple[OrderRow, list[InstallmentPaymentRow] | None]:
    """The order, and the installment rows written for it (None: a retry found the order an earlier try placed)."""
    session, actor = uow.session, uow.actor
    school_id = school_for(actor, command.school_id)
    if idempotency_key is not None:
        # Concurrent retries queue on the key, so the second sees the first one's order instead of racing it.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{school_id}:{idempotency_key}"}
        )
        existing = (
            await session.execute(
                select(OrderRow).where(
                    OrderRow.school_id == school_id,
                    OrderRow.idempotency_key == idempotency_key,
                )
            )
        ).scalar_one_or_none()
        if existing is not None:
            return existing, None
    assessment = command.assessment.to_domain() if command.assessment else None
    priced = await price_request(
        session,
        package_code=command.package_code,
        student_count=command.student_count,
        add_on_codes=list(command.add_ons),
        payment_option=command.payment_option,
        months=command.months,
        currency=command.currency,
        assessment=assessment,
        today=today,
    )
    quote = priced.quote
    order = Order.place(
        school_id=school_id,
        package_code=quote.package.code,
        package_version=quote.package.version,
        student_count=command.student_count,
        add_ons=[a.code for a in quote.add_ons],
        payment_option=command.payment_option,
        months=command.months,
        total=quote.total,
        installments=list(quote.installments),
        contact=command.contact.to_contract(),
        created_by=actor.sub,
        timeline_days=priced.timeline.working_days,
    )
    body = quote_body(priced)
    row = repository.new_row(
        order,
        lines=body["lines"],
        exchange_rate=body["exchange_rate"],
        assessment=command.assessment.model_dump(mode="json") if command.assessment else None,
        idempotency_key=idempotency_key,
        notes=command.notes,
    )
    installments = repository.installment_rows(order)
    await repository.add_new(session, row, installments)
    await _publish(uow, order)
    await uow.audit("order", row.id, "create", after=repository.snapshot(row))
    return row, installments


# What a list entry shows: the large JSON columns (lines, installments, contact, assessment) stay unread.
SUMMARY_COLUMNS = (
    OrderRow.id,
    OrderRow.school_id,
    OrderRow.status,
    OrderRow.package_code,
    OrderRow.package_version,
    OrderRow.student_count,
    OrderRow.add_ons,
    OrderRow.payment_option,
    OrderRow.months,
    OrderRow.total_minor,
    OrderRow.currency,
    OrderRow.created_at,
    OrderRow.updated_at,
)


async def list_orders(
    session: AsyncSession, uow: UnitOfWork, *, status: str | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    """A page of summary rows (newest first, on the (school_id, created_at DESC, id) index) and the total.

    One round trip: the total rides on every row as a window count. Only a page past the end has no row to
    carry it, and only then is it counted on its own.
    """
    where = [order_visible(uow.actor)]
    if status is not None:
        where.append(OrderRow.status == status)
    page = (
        await session.execute(
            select(*SUMMARY_COLUMNS, func.count().over().label("total_count"))
            .where(*where)
            .order_by(OrderRow.created_at.desc(), OrderRow.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    if page:
        return list(page), page[0].total_count
    if offset == 0:
        return [], 0
    total = (await session.execute(select(func.count()).select_from(OrderRow).where(*where))).scalar_one()
    return [], total


async def update_order(uow: UnitOfWork, order_id: UUID, command: UpdateOrder) -> OrderRow:
    if uow.actor.role == "team_member":
        raise Problem(403, "Forbidden", "Team members may update tasks and milestones, not the order.")
    row = await visible_order(uow.session, uow.actor, order_id, for_update=True)
    before = repository.snapshot(row)
    changes = command.model_dump(exclude_unset=True, mode="json")
    if "contact" in changes and command.contact is not None:
        row.contact = command.contact.to_contract().model_dump(mode="json")
    if "assessment" in changes:  # stored whole, as at creation (the nested defaults too)
        row.assessment = command.assessment.model_dump(mode="json") if command.assessment else None
    if "notes" in changes:
        row.notes = command.notes
    await uow.session.flush()
    await uow.audit("order", row.id, "update", before=before, after=repository.snapshot(row))
    return row


async def change_status(uow: UnitOfWork, order_id: UUID, command: ChangeStatus, *, today: date) -> OrderRow:
    actor = uow.actor
    cancelling_own_pending = actor.role == "school_admin" and command.status == "cancelled"
    if not cancelling_own_pending:
        require_admin(actor)
    row = await visible_order(uow.session, actor, order_id, for_update=True)
    if cancelling_own_pending and row.status != "pending":
        raise Problem(403, "Forbidden", "A school admin may cancel an order only while it is pending.")
    before = repository.snapshot(row)
    resuming = row.status == "on_hold"
    order = await repository.load(uow.session, row)
    override = Override(command.reason or "") if command.override else None
    order.change_status(command.status, changed_by=actor.sub, reason=command.reason, override=override, today=today)
    await repository.save(uow.session, order, row)
    await _publish(uow, order)
    if command.status == "data_migration" and not resuming:  # a resumed migration's job is already there
        await _start_migration_job(uow, row)
    await uow.audit(
        "order",
        row.id,
        "status_change" if override is None else "status_change_override",
        before=before,
        after={**repository.snapshot(row), "reason": command.reason},
    )
    return row


async def assign_team(uow: UnitOfWork, order_id: UUID, command: AssignTeam) -> OrderRow:
    require_admin(uow.actor)
    row = await visible_order(uow.session, uow.actor, order_id, for_update=True)
    before = repository.snapshot(row)
    order = await repository.load(uow.session, row)
    order.assign_team(command.members, command.lead)
    await repository.save(uow.session, order, row)
    await _publish(uow, order)
    await uow.audit("order", row.id, "assign_team", before=before, after=repository.snapshot(row))
    return row


async def _start_migration_job(uow: UnitOfWork, row: OrderRow) -> None:
    """Entering data_migration: send the worker its job, built from the registered data sources."""
    sources = (
        await uow.session.execute(
            select(DataSourceRow).where(DataSourceRow.order_id == row.id).order_by(DataSourceRow.created_at)
        )
    ).scalars()
    job_id = uuid4()
    command = StartJob(
        job_id=job_id,
        order_id=row.id,
        school_id=row.school_id,
        data_sources=[
            DataSource(
                source_id=s.id,
                kind=s.kind,
                name=s.name,
                location=s.location,
                entity=s.entity,
                estimated_rows=s.estimated_rows,
            )
            for s in sources
        ],
    )
    uow.session.add(MigrationJobRow(job_id=job_id, order_id=row.id, school_id=row.school_id, status="requested"))
    await uow.publish(command, school_id=row.school_id, correlation_id=row.id)


async def _publish(uow: UnitOfWork, order: Order) -> None:
    for event in order.events:
        await uow.publish(event, school_id=order.school_id, correlation_id=order.id)
    order.events.clear()


def money(amount_minor: int, currency: str) -> dict[str, Any]:
    return {"amount_minor": amount_minor, "currency": currency}
