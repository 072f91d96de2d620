from typing import Any

from fastapi import APIRouter, status
from servicekit.problems import Problem

from orders.adapters import catalogue_repository as repository
from orders.domain.catalogue import AddOn, CarePackage
from orders.entrypoints.http.dependencies import UowDep
from orders.entrypoints.http.schemas import AddOnOut, CarePackageOut, CatalogueOut, ExchangeRateOut, problems
from orders.service_layer import catalogue
from orders.service_layer.commands import CarePackageIn, CarePackageUpdate, ExchangeRateIn

router = APIRouter(prefix="/api/v1/migration-services", tags=["catalogue"])


def package_out(p: CarePackage) -> CarePackageOut:
    return CarePackageOut(
        code=p.code,
        version=p.version,
        name=p.name,
        description=p.description,
        price=p.price,
        min_students=p.min_students,
        max_students=p.max_students,
        base_timeline_days=p.base_timeline_days,
    )


def add_on_out(a: AddOn) -> AddOnOut:
    return AddOnOut(code=a.code, version=a.version, name=a.name, price=a.price, timeline_percent=a.timeline_percent)


@router.get("/care-packages", response_model=CatalogueOut, responses=problems(), summary="Current packages and add-ons")
async def list_packages(uow: UowDep) -> CatalogueOut:
    packages = await repository.current_packages(uow.session)
    add_ons = await repository.current_add_ons(uow.session)
    return CatalogueOut(packages=[package_out(p) for p in packages], add_ons=[add_on_out(a) for a in add_ons])


@router.get(
    "/care-packages/{code}",
    response_model=list[CarePackageOut],
    responses=problems(404),
    summary="Every version of one package, oldest first",
)
async def package_versions(code: str, uow: UowDep) -> list[CarePackageOut]:
    history = await repository.package_history(uow.session, code)
    if not history:
        raise Problem(404, "Not found", f"Care package {code} does not exist.")
    return [package_out(p) for p in history]


@router.post(
    "/care-packages",
    status_code=status.HTTP_201_CREATED,
    response_model=CarePackageOut,
    responses=problems(403, 409, 422),
    summary="Create a package (platform admin)",
)
async def create_package(body: CarePackageIn, uow: UowDep) -> CarePackageOut:
    return package_out(await catalogue.create_package(uow, body))


@router.put(
    "/care-packages/{code}",
    response_model=CarePackageOut,
    responses=problems(403, 404, 422),
    summary="Publish a new version of a package (platform admin); sold orders keep their version",
)
async def revise_package(code: str, body: CarePackageUpdate, uow: UowDep) -> CarePackageOut:
    return package_out(await catalogue.revise_package(uow, code, body))


@router.get("/exchange-rates", response_model=list[ExchangeRateOut], responses=problems())
async def list_rates(uow: UowDep) -> list[dict[str, Any]]:
    return [
        {"currency": r.currency, "rate": str(r.rate), "effective_date": r.effective_date}
        for r in await repository.exchange_rates(uow.session)
    ]


@router.post(
    "/exchange-rates",
    status_code=status.HTTP_201_CREATED,
    response_model=ExchangeRateOut,
    responses=problems(403, 409, 422),
    summary="Add a rate with its effective date (platform admin)",
)
async def add_rate(body: ExchangeRateIn, uow: UowDep) -> dict[str, Any]:
    row = await catalogue.add_exchange_rate(uow, body)
    return {"currency": row.currency, "rate": str(row.rate), "effective_date": row.effective_date}
