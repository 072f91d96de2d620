# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""Tasks and milestones: the delivery team's day-to-day work on an order."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from servicekit.problems import Problem
from sqlalchemy import select

from orders.adapters import order_repository as repository
from orders.adapters.tables import MilestoneRow, OrderRow, TaskRow
from orders.service_layer.access import not_found, order_visible, visible_order
from orders.service_layer.commands import CreateTask, UpdateTask
from orders.service_layer.unit_of_work import UnitOfWork


def _task_snapshot(task: TaskRow) -> dict[str, object]:
    return task.model_dump(mode="json", include={"title", "description", "assignee", "due_date", "status"})


async def list_tasks(uow: UnitOfWork, order_id: UUID) -> list[TaskRow]:
    await visible_order(uow.session, uow.actor, order_id)
    rows = await uow.session.execute(
        select(TaskRow).where(TaskRow.order_id == order_id).order_by(TaskRow.created_at, TaskRow.id)
    )
    return list(rows.scalars())


async def create_task(uow: UnitOfWork, order_id: UUID, command: CreateTask) -> TaskRow:
    order = await visible_order(uow.session, uow.actor, order_id)
    task = TaskRow(order_id=order.id, school_id=order.school_id, created_by=uow.actor.sub, **command.model_dump())
    uow.session.add(task)
    await uow.session.flush()
    await uow.audit("task", task.id, "create", after=_task_snapshot(task))
    return task


async def update_task(uow: UnitOfWork, task_id: UUID, command: UpdateTask) -> TaskRow:
    found = await uow.session.execute(
        select(TaskRow)
        .join(OrderRow, OrderRow.id == TaskRow.order_id)
        .where(TaskRow.id == task_id, order_visible(uow.actor))
        .with_for_update(of=TaskRow)
    )
    task = found.scalar_one_or_none()
    if task is None:
        raise not_found("Task", task_id)
    before = _task_snapshot(task)
    for field, value in command.model_dump(exclude_unset=True).items():
        if field in ("title", "status") and value is None:
            raise Problem(422, "Validation failed", f"{field} cannot be null.")
        setattr(task, field, value)
    task.updated_at = datetime.now(UTC)
    await uow.session.flush()
    await uow.audit("task", task.id, "update", before=before, after=_task_snapshot(task))
    return task


async def list_milestones(uow: UnitOfWork, order_id: UUID) -> list[MilestoneRow]:
    await visible_order(uow.session, uow.actor, order_id)
    rows = await uow.session.execute(
        select(MilestoneRow).where(MilestoneRow.order_id == order_id).order_by(MilestoneRow.sequence)
    )
    return list(rows.scalars())


async def complete_milestone(uow: UnitOfWork, order_id: UUID, milestone_id: UUID) -> MilestoneRow:
    if uow.actor.role == "school_admin":
        raise Problem(403, "Forbidden", "Milestones are completed by the delivery team or a platform admin.")
    row = await visible_order(uow.session, uow.actor, order_id, for_update=True)
    order = await repository.load(uow.session, row)
    if all(m.id != milestone_id for m in order.milestones):
        raise not_found("Milestone", milestone_id)
    order.complete_milestone(milestone_id)
    await repository.save(uow.session, order, row)
    for event in order.events:
        await uow.publish(event, school_id=order.school_id, correlation_id=order.id)
    stored = await uow.session.get(MilestoneRow, milestone_id)
    assert stored is not None
    stored.completed_by = uow.actor.sub
    await uow.audit("milestone", milestone_id, "complete", before={"status": "pending"}, after={"status": "completed"})
    return stored
