"""Use cases of the orders service."""

from uuid import UUID

from contracts.envelope import Envelope
from contracts.money import Money
from contracts.orders import OrderCreated
from servicekit.auth import Principal
from servicekit.outbox import add_event
from servicekit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters.tables import OrderRow
from orders.entrypoints.http.schemas import CreateOrder

# Walking-skeleton price list (USD minor units); the pricing domain replaces it.
_BASE = {"foundation": 280_000, "growth": 650_000, "enterprise": 1_500_000}
_ADD_ONS = {"rush_migration": 100_000, "onsite_training": 80_000, "weekend_work": 50_000}


def _school_for(principal: Principal, requested: UUID | None) -> UUID:
    if principal.role == "school_admin":
        assert principal.school_id is not None
        if requested is not None and requested != principal.school_id:
            raise Problem(403, "Forbidden", "A school admin can only order for their own school.")
        return principal.school_id
    if principal.role == "platform_admin" and requested is not None:
        return requested
    raise Problem(403, "Forbidden", "Only school admins (or platform admins naming a school) may order.")


async def create_order(session: AsyncSession, principal: Principal, command: CreateOrder) -> OrderRow:
    school_id = _school_for(principal, command.school_id)
    subtotal = _BASE[command.package_code] + sum(_ADD_ONS[a] for a in command.add_ons)
    total = subtotal - (subtotal * 5 + 50) // 100 if command.payment_option == "full" else subtotal
    order = OrderRow(
        school_id=school_id,
        package_code=command.package_code,
        student_count=command.student_count,
        add_ons=list(command.add_ons),
        payment_option=command.payment_option,
        months=command.months,
        currency=command.currency,
        total_minor=total,
        contact=command.contact.model_dump(mode="json"),
        created_by=principal.sub,
    )
    session.add(order)
    await session.flush()
    event = OrderCreated(
        order_id=order.id,
        school_id=school_id,
        package_code=command.package_code,
        student_count=command.student_count,
        add_ons=list(command.add_ons),
        payment_option=command.payment_option,
        months=command.months,
        total=Money(amount_minor=total, currency=command.currency),
        contact=command.contact.to_contract(),
    )
    await add_event(session, Envelope.wrap(event, school_id=school_id))
    return order


async def get_order(session: AsyncSession, principal: Principal, order_id: UUID) -> OrderRow:
    order = await session.get(OrderRow, order_id)
    if order is None or (principal.role == "school_admin" and order.school_id != principal.school_id):
        raise Problem(404, "Not found", f"Order {order_id} does not exist.")
    return order
