# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""Quotes: an itemised price, schedule, recommendation and timeline, kept for conversion analytics."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from servicekit.problems import Problem
from sqlalchemy import select

from orders.adapters.tables import QuoteRow
from orders.service_layer.access import school_for, school_visible
from orders.service_layer.commands import RequestQuote
from orders.service_layer.pricing import price_request, quote_body
from orders.service_layer.unit_of_work import UnitOfWork


async def request_quote(uow: UnitOfWork, command: RequestQuote, *, today: date) -> QuoteRow:
    if uow.actor.role == "team_member":
        raise Problem(403, "Forbidden", "Quotes are requested by school admins or platform admins.")
    school_id = school_for(uow.actor, command.school_id) if not uow.actor.is_admin or command.school_id else None
    priced = await price_request(
        uow.session,
        package_code=command.package_code,
        student_count=command.student_count,
        add_on_codes=list(command.add_ons),
        payment_option=command.payment_option,
        months=command.months,
        currency=command.currency,
        assessment=command.assessment.to_domain() if command.assessment else None,
        today=today,
    )
    body: dict[str, Any] = quote_body(priced)
    body["student_count"] = command.student_count
    body["assessment"] = command.assessment.model_dump(mode="json") if command.assessment else None
    row = QuoteRow(
        school_id=school_id,
        created_by=uow.actor.sub,
        body=body,
        package_code=priced.quote.package.code,
        total_minor=priced.quote.total.amount_minor,
        currency=priced.quote.currency,
    )
    uow.session.add(row)
    await uow.session.flush()
    return row


async def get_quote(uow: UnitOfWork, quote_id: UUID) -> QuoteRow:
    query = select(QuoteRow).where(QuoteRow.id == quote_id, school_visible(QuoteRow.school_id, uow.actor))
    row = (await uow.session.execute(query)).scalar_one_or_none()
    if row is None:
        raise Problem(404, "Not found", f"Quote {quote_id} does not exist.")
    return row
