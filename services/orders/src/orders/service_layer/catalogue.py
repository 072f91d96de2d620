"""Catalogue and exchange-rate use cases (writes are for platform admins)."""

from __future__ import annotations

from dataclasses import replace

from contracts.money import Money
from servicekit.problems import Problem

from orders.adapters import catalogue_repository as repository
from orders.adapters.tables import ExchangeRateRow
from orders.domain.catalogue import CarePackage
from orders.service_layer.access import require_admin
from orders.service_layer.commands import CarePackageIn, CarePackageUpdate, ExchangeRateIn
from orders.service_layer.unit_of_work import UnitOfWork


async def create_package(uow: UnitOfWork, command: CarePackageIn) -> CarePackage:
    require_admin(uow.actor)
    await repository.lock_catalogue(uow.session)
    if await repository.package_history(uow.session, command.code):
        raise Problem(409, "Already exists", f"Care package {command.code} exists; PUT a new version instead.")
    package = CarePackage(
        code=command.code,
        name=command.name,
        description=command.description,
        price=Money(amount_minor=command.price_minor, currency="USD"),
        min_students=command.min_students,
        max_students=command.max_students,
        base_timeline_days=command.base_timeline_days,
    )
    await repository.save_package(uow.session, package, uow.actor.sub)
    await uow.audit("care_package", package.code, "create", after=_snapshot(package))
    return package


async def revise_package(uow: UnitOfWork, code: str, command: CarePackageUpdate) -> CarePackage:
    """A new version; orders already sold keep the version they bought."""
    require_admin(uow.actor)
    await repository.lock_catalogue(uow.session)
    history = await repository.package_history(uow.session, code)
    if not history:
        raise Problem(404, "Not found", f"Care package {code} does not exist.")
    current = history[-1]
    changes = command.model_dump(exclude_unset=True)
    price_minor = changes.pop("price_minor", None)
    if any(value is None for key, value in changes.items() if key != "max_students"):
        raise Problem(422, "Validation failed", "Only max_students may be set to null (unlimited).")
    revised = current.revised(**changes)
    if price_minor is not None:
        revised = replace(revised, price=Money(amount_minor=price_minor, currency=current.price.currency))
    if revised.max_students is not None and revised.max_students < revised.min_students:
        raise Problem(422, "Validation failed", "max_students must not be below min_students.")
    await repository.save_package(uow.session, revised, uow.actor.sub)
    await uow.audit("care_package", code, "revise", before=_snapshot(current), after=_snapshot(revised))
    return revised


async def add_exchange_rate(uow: UnitOfWork, command: ExchangeRateIn) -> ExchangeRateRow:
    require_admin(uow.actor)
    if await repository.rate_exists(uow.session, command.currency, command.effective_date):
        raise Problem(409, "Already exists", "A rate for that currency and effective date exists.")
    row = ExchangeRateRow(
        currency=command.currency, rate=command.rate, effective_date=command.effective_date, created_by=uow.actor.sub
    )
    uow.session.add(row)
    await uow.session.flush()
    await uow.audit("exchange_rate", row.id, "create", after=command.model_dump(mode="json"))
    return row


def _snapshot(package: CarePackage) -> dict[str, object]:
    return {
        "version": package.version,
        "name": package.name,
        "price_minor": package.price.amount_minor,
        "min_students": package.min_students,
        "max_students": package.max_students,
        "base_timeline_days": package.base_timeline_days,
    }
