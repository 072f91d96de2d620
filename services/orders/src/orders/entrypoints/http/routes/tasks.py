from uuid import UUID

from fastapi import APIRouter

from orders.adapters.tables import TaskRow
from orders.entrypoints.http.dependencies import UowDep
from orders.entrypoints.http.schemas import TaskOut, problems
from orders.service_layer import work
from orders.service_layer.commands import UpdateTask

router = APIRouter(prefix="/api/v1/migration-services/tasks", tags=["tasks"])


@router.put(
    "/{task_id}",
    response_model=TaskOut,
    responses=problems(400, 404, 422),
    summary="Update a task's assignee, due date, status or text",
)
async def update_task(task_id: UUID, body: UpdateTask, uow: UowDep) -> TaskRow:
    return await work.update_task(uow, task_id, body)
