# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""Who may see and do what. Every query filters here; row-level security in PostgreSQL backs it up."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from servicekit.problems import Problem
from sqlalchemy import ColumnElement, false, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters.tables import OrderRow
from orders.service_layer.unit_of_work import Actor


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Problem(403, "Forbidden", "This action needs the platform_admin role.")


def school_for(actor: Actor, requested: UUID | None) -> UUID:
    if actor.role == "school_admin":
        assert actor.school_id is not None
        if requested is not None and requested != actor.school_id:
            raise Problem(403, "Forbidden", "A school admin can only act for their own school.")
        return actor.school_id
    if actor.is_admin and requested is not None:
        return requested
    raise Problem(403, "Forbidden", "Only school admins (or platform admins naming a school_id) may do this.")


def order_visible(actor: Actor) -> ColumnElement[bool]:
    if actor.is_admin:
        return true()
    if actor.role == "school_admin" and actor.school_id is not None:
        return OrderRow.school_id == actor.school_id
    if actor.role == "team_member":
        return literal(actor.sub) == OrderRow.team.any_()
    return false()


def school_visible(column: Any, actor: Actor) -> ColumnElement[bool]:
    if actor.is_admin:
        return true()
    if actor.role == "school_admin" and actor.school_id is not None:
        return column == actor.school_id
    return false()


def not_found(kind: str, ident: object) -> Problem:
    # Another tenant's row answers exactly like a missing one: existence is not leaked.
    return Problem(404, "Not found", f"{kind} {ident} does not exist.")


async def visible_order(session: AsyncSession, actor: Actor, order_id: UUID, *, for_update: bool = False) -> OrderRow:
    query = select(OrderRow).where(OrderRow.id == order_id, order_visible(actor))
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise not_found("Order", order_id)
    return row
