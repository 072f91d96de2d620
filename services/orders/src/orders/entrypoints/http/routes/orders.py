from typing import Annotated, Any
from uuid import UUID

from contracts.orders import OrderStatus
from fastapi import APIRouter, Header, Query, Request, status
from pydantic import ValidationError
from servicekit.problems import Problem

from orders.adapters.tables import DataSourceRow, MilestoneRow, OrderRow, TaskRow
from orders.entrypoints.http.dependencies import SecretBoxDep, TodayDep, UowDep, UploadStoreDep
from orders.entrypoints.http.schemas import (
    DataSourceOut,
    MilestoneOut,
    OrderOut,
    OrderPage,
    TaskOut,
    problems,
)
from orders.service_layer import data_sources, views, work
from orders.service_layer import orders as use_cases
from orders.service_layer.access import visible_order
from orders.service_layer.commands import (
    AssignTeam,
    ChangeStatus,
    CompleteMilestone,
    CreateTask,
    PlaceOrder,
    RegisterPostgresSource,
    UpdateOrder,
)

router = APIRouter(prefix="/api/v1/migration-services/orders", tags=["orders"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a retried create with the same key returns the first order instead of a second one",
    ),
]


async def _detail(uow: UowDep, row: OrderRow) -> dict[str, Any]:
    return await views.order_detail(uow.session, row)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    responses=problems(400, 403, 413, 422),
    summary="Place an order (school admin; platform admin naming school_id)",
)
async def create_order(
    body: PlaceOrder, uow: UowDep, today: TodayDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    row, installments = await use_cases.place_order(uow, body, idempotency_key=idempotency_key, today=today)
    if installments is None:  # a retry: the order may have moved on since, read it whole
        return await _detail(uow, row)
    return views.new_order_detail(row, installments)


@router.get("", response_model=OrderPage, responses=problems(422), summary="Orders the caller may see, newest first")
async def list_orders(
    uow: UowDep,
    status_filter: Annotated[OrderStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    rows, total = await use_cases.list_orders(uow.session, uow, status=status_filter, limit=limit, offset=offset)
    return {"items": [views.summary(r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/{order_id}", response_model=OrderOut, responses=problems(404))
async def get_order(order_id: UUID, uow: UowDep) -> dict[str, Any]:
    return await _detail(uow, await visible_order(uow.session, uow.actor, order_id))


@router.put(
    "/{order_id}",
    response_model=OrderOut,
    responses=problems(400, 403, 404, 422),
    summary="Amend contact, assessment or notes (prices and terms stay as sold)",
)
async def update_order(order_id: UUID, body: UpdateOrder, uow: UowDep) -> dict[str, Any]:
    return await _detail(uow, await use_cases.update_order(uow, order_id, body))


@router.patch(
    "/{order_id}/status",
    response_model=OrderOut,
    responses=problems(400, 403, 404, 409, 422),
    summary="Move the order along its lifecycle; 409 lists the allowed moves",
)
async def change_status(order_id: UUID, body: ChangeStatus, uow: UowDep, today: TodayDep) -> dict[str, Any]:
    return await _detail(uow, await use_cases.change_status(uow, order_id, body, today=today))


@router.post(
    "/{order_id}/team",
    response_model=OrderOut,
    responses=problems(400, 403, 404, 422),
    summary="Assign the delivery team (platform admin)",
)
async def assign_team(order_id: UUID, body: AssignTeam, uow: UowDep) -> dict[str, Any]:
    return await _detail(uow, await use_cases.assign_team(uow, order_id, body))


@router.get("/{order_id}/tasks", response_model=list[TaskOut], responses=problems(404))
async def list_tasks(order_id: UUID, uow: UowDep) -> list[TaskRow]:
    return await work.list_tasks(uow, order_id)


@router.post(
    "/{order_id}/tasks", status_code=status.HTTP_201_CREATED, response_model=TaskOut, responses=problems(400, 404, 422)
)
async def create_task(order_id: UUID, body: CreateTask, uow: UowDep) -> TaskRow:
    return await work.create_task(uow, order_id, body)


@router.get("/{order_id}/milestones", response_model=list[MilestoneOut], responses=problems(404))
async def list_milestones(order_id: UUID, uow: UowDep) -> list[MilestoneRow]:
    return await work.list_milestones(uow, order_id)


@router.patch(
    "/{order_id}/milestones/{milestone_id}",
    response_model=MilestoneOut,
    responses=problems(400, 403, 404, 409, 422),
    summary="Complete a milestone (team member on the order or platform admin)",
)
async def complete_milestone(order_id: UUID, milestone_id: UUID, body: CompleteMilestone, uow: UowDep) -> MilestoneRow:
    return await work.complete_milestone(uow, order_id, milestone_id)


@router.get("/{order_id}/data-sources", response_model=list[DataSourceOut], responses=problems(404))
async def list_data_sources(order_id: UUID, uow: UowDep) -> list[DataSourceRow]:
    return await data_sources.list_sources(uow, order_id)


@router.post(
    "/{order_id}/data-sources",
    status_code=status.HTTP_201_CREATED,
    response_model=DataSourceOut,
    responses=problems(400, 404, 409, 413, 415, 422),
    summary="Register a data source: JSON for a PostgreSQL connection string, multipart/form-data for a CSV upload",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": RegisterPostgresSource.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "name"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "name": {"type": "string", "maxLength": 200},
                            "entity": {"type": "string", "maxLength": 100},
                        },
                    }
                },
            },
        }
    },
)
async def register_data_source(
    order_id: UUID, request: Request, uow: UowDep, box: SecretBoxDep, store: UploadStoreDep
) -> DataSourceRow:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            command = RegisterPostgresSource.model_validate_json(await request.body())
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise Problem(400, "Malformed JSON", "The request body is not valid JSON.") from None
            raise Problem(
                422,
                "Validation failed",
                "The request does not match the expected schema.",
                errors=[{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()],
            ) from None
        return await data_sources.register_postgres(uow, order_id, command, box)
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        upload, name, entity = form.get("file"), form.get("name"), form.get("entity")
        if upload is None or isinstance(upload, str) or not isinstance(name, str) or not name.strip():
            raise Problem(422, "Validation failed", "A CSV upload needs a file and a name.")
        if entity is not None and not isinstance(entity, str):
            raise Problem(422, "Validation failed", "entity must be text.")
        return await data_sources.register_csv(
            uow, order_id, name=name.strip()[:200], entity=entity, content=await upload.read(), store=store
        )
    raise Problem(415, "Unsupported media type", "Send application/json or multipart/form-data.")
