# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""Reads and writes the versioned catalogue and the exchange-rate table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from contracts.money import Money
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters.tables import AddOnRow, CarePackageRow, ExchangeRateRow
from orders.adapters.tenancy import CATALOGUE_STAMP
from orders.domain.catalogue import AddOn, CarePackage
from orders.domain.pricing import ExchangeRate


def package_from_row(row: CarePackageRow) -> CarePackage:
    return CarePackage(
        code=row.code,
        name=row.name,
        price=Money(amount_minor=row.price_minor, currency=row.currency),
        min_students=row.min_students,
        max_students=row.max_students,
        base_timeline_days=row.base_timeline_days,
        version=row.version,
        description=row.description,
    )


def add_on_from_row(row: AddOnRow) -> AddOn:
    return AddOn(
        code=row.code,
        name=row.name,
        price=Money(amount_minor=row.price_minor, currency=row.currency),
        timeline_percent=row.timeline_percent,
        version=row.version,
    )


T = TypeVar("T")

# The process's copy of the current catalogue, per kind, with the revision stamp it is valid for. The stamp
# is read at the start of the transaction and the rows afterwards, so a copy is never older than its stamp.
_copies: dict[str, tuple[UUID, Any]] = {}


async def _current(session: AsyncSession, kind: str, load: Callable[[AsyncSession], Awaitable[T]]) -> T:
    stamp = session.info.get(CATALOGUE_STAMP)
    copy = _copies.get(kind)
    if stamp is not None and copy is not None and copy[0] == stamp:
        value: T = copy[1]
        return value
    value = await load(session)
    if stamp is not None:
        _copies[kind] = (stamp, value)
    return value


async def _load_packages(session: AsyncSession) -> tuple[CarePackage, ...]:
    rows = await session.execute(select(CarePackageRow).order_by(CarePackageRow.code, CarePackageRow.version))
    latest = {r.code: r for r in rows.scalars()}  # the catalogue is a handful of rows; the last version wins
    return tuple(sorted((package_from_row(r) for r in latest.values()), key=lambda p: p.price.amount_minor))


async def _load_add_ons(session: AsyncSession) -> tuple[AddOn, ...]:
    rows = await session.execute(select(AddOnRow).order_by(AddOnRow.code, AddOnRow.version))
    latest = {r.code: r for r in rows.scalars()}
    return tuple(add_on_from_row(r) for r in latest.values())


async def current_packages(session: AsyncSession) -> list[CarePackage]:
    return list(await _current(session, "packages", _load_packages))


async def current_add_ons(session: AsyncSession) -> list[AddOn]:
    return list(await _current(session, "add_ons", _load_add_ons))


async def package_history(session: AsyncSession, code: str) -> list[CarePackage]:
    rows = await session.execute(
        select(CarePackageRow).where(CarePackageRow.code == code).order_by(CarePackageRow.version)
    )
    return [package_from_row(r) for r in rows.scalars()]


async def save_package(session: AsyncSession, package: CarePackage, created_by: str) -> None:
    session.add(
        CarePackageRow(
            code=package.code,
            version=package.version,
            name=package.name,
            description=package.description,
            price_minor=package.price.amount_minor,
            currency=package.price.currency,
            min_students=package.min_students,
            max_students=package.max_students,
            base_timeline_days=package.base_timeline_days,
            created_by=created_by,
        )
    )
    await session.flush()
    # The trigger replaced the stamp: this transaction reads fresh rows, and every later one sees a new stamp.
    session.info.pop(CATALOGUE_STAMP, None)


async def lock_catalogue(session: AsyncSession) -> None:
    """Serialises catalogue edits so two admins cannot both create version N+1."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('orders.catalogue'))"))


async def exchange_rates(session: AsyncSession, currency: str | None = None) -> list[ExchangeRate]:
    query = select(ExchangeRateRow).order_by(ExchangeRateRow.effective_date)
    if currency is not None:
        query = query.where(ExchangeRateRow.currency == currency)
    rows = await session.execute(query)
    return [ExchangeRate(currency=r.currency, rate=r.rate, effective_date=r.effective_date) for r in rows.scalars()]


async def rate_exists(session: AsyncSession, currency: str, effective: date) -> bool:
    """Whether a rate for that day exists; holds the day until the transaction ends, so two admins adding
    it at once get one 201 and one 409, not a unique-key error."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('exchange-rate:' || :currency || ':' || :day))"),
        {"currency": currency, "day": effective.isoformat()},
    )
    found = await session.execute(
        select(ExchangeRateRow.id).where(
            ExchangeRateRow.currency == currency,
            ExchangeRateRow.effective_date == effective,
        )
    )
    return found.first() is not None
