from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from servicekit.problems import Problem

from orders.adapters.tables import AuditLogRow
from orders.entrypoints.http.dependencies import UowDep
from orders.entrypoints.http.schemas import (
    AnalyticsOut,
    AuditEntryOut,
    DashboardOut,
    TeamPerformanceOut,
    problems,
)
from orders.service_layer import views

router = APIRouter(prefix="/api/v1/migration-services", tags=["dashboard"])


@router.get("/dashboard", response_model=DashboardOut, responses=problems(403), summary="Platform admin overview")
async def dashboard(uow: UowDep) -> dict[str, Any]:
    return await views.dashboard(uow)


@router.get("/analytics", response_model=AnalyticsOut, responses=problems(403, 422))
async def analytics(
    uow: UowDep,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    group_by: Literal["month", "package"] = "month",
) -> dict[str, Any]:
    if end < start:
        raise Problem(422, "Validation failed", "'to' must not be before 'from'.")
    return await views.analytics(uow, start=start, end=end, group_by=group_by)


@router.get("/team-performance", response_model=list[TeamPerformanceOut], responses=problems(403))
async def team_performance(uow: UowDep) -> list[dict[str, Any]]:
    return await views.team_performance(uow)


@router.get(
    "/audit", response_model=list[AuditEntryOut], responses=problems(403, 422), summary="Audit trail, newest first"
)
async def audit(
    uow: UowDep,
    entity: Annotated[str | None, Query(max_length=50)] = None,
    entity_id: Annotated[str | None, Query(alias="id", max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditLogRow]:
    # PostgreSQL text cannot hold NUL, so such a filter would fail in the database instead of matching nothing
    if any("\x00" in value for value in (entity, entity_id) if value is not None):
        raise Problem(422, "Validation failed", "'entity' and 'id' must not contain NUL characters.")
    return await views.audit_trail(uow, entity=entity, entity_id=entity_id, limit=limit)
