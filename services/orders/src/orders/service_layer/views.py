# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""Read-only views: the order page, the admin dashboard, analytics, team performance and the audit trail.

Plain SQL on purpose: these are aggregates over indexed columns, and they must stay fast at 10,000 orders.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters.tables import (
    AuditLogRow,
    CommunicationLogRow,
    InstallmentPaymentRow,
    MigrationJobRow,
    MilestoneRow,
    OrderRow,
)
from orders.domain.lifecycle import ACTIVE, allowed_moves
from orders.service_layer.access import require_admin
from orders.service_layer.unit_of_work import UnitOfWork

ACTIVE_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(ACTIVE)) + ")"


async def order_detail(session: AsyncSession, row: OrderRow) -> dict[str, Any]:
    milestones = list(
        (
            await session.execute(
                select(MilestoneRow).where(MilestoneRow.order_id == row.id).order_by(MilestoneRow.sequence)
            )
        ).scalars()
    )
    payments = list(
        (
            await session.execute(
                select(InstallmentPaymentRow)
                .where(InstallmentPaymentRow.order_id == row.id)
                .order_by(InstallmentPaymentRow.sequence)
            )
        ).scalars()
    )
    job = (
        await session.execute(
            select(MigrationJobRow)
            .where(MigrationJobRow.order_id == row.id)
            .order_by(MigrationJobRow.updated_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    messages = list(
        (
            await session.execute(
                select(CommunicationLogRow)
                .where(CommunicationLogRow.order_id == row.id)
                .order_by(CommunicationLogRow.occurred_at.desc())
                .limit(50)
            )
        ).scalars()
    )
    return _detail(row, milestones, payments, job, messages)


def new_order_detail(row: OrderRow, installments: list[InstallmentPaymentRow]) -> dict[str, Any]:
    """order_detail of an order placed in this very transaction, without reading anything back.

    Nothing can refer to it yet: no milestones (they come with approval), no migration job, no messages, and its
    payments are the planned installments just written.
    """
    return _detail(row, [], sorted(installments, key=lambda p: p.sequence), None, [])


def _detail(
    row: OrderRow,
    milestones: list[MilestoneRow],
    payments: list[InstallmentPaymentRow],
    job: MigrationJobRow | None,
    messages: list[CommunicationLogRow],
) -> dict[str, Any]:
    done = sum(1 for m in milestones if m.status == "completed")
    return {
        **summary(row),
        "lines": row.lines,
        "installments": row.installments,
        "exchange_rate": row.exchange_rate,
        "contact": row.contact,
        "assessment": row.assessment,
        "notes": row.notes,
        "team": list(row.team),
        "team_lead": row.team_lead,
        "held_from": row.held_from,
        "allowed_moves": sorted(allowed_moves(row.status, row.held_from)),
        "progress_percent": done * 100 // len(milestones) if milestones else 0,
        "milestones": [m.model_dump(mode="json") for m in milestones],
        "payments": [
            p.model_dump(
                mode="json", include={"sequence", "installment_id", "amount_minor", "currency", "status", "paid_at"}
            )
            for p in payments
        ],
        "migration_job": None
        if job is None
        else job.model_dump(
            mode="json", include={"job_id", "status", "phase", "percent", "rows_done", "rows_total", "report", "reason"}
        ),
        "communications": [
            m.model_dump(
                mode="json", include={"message_id", "event_type", "channel", "template", "status", "occurred_at"}
            )
            for m in messages
        ],
    }


def summary(row: Any) -> dict[str, Any]:
    """An order's list entry, from an OrderRow or a row of the list query's columns."""
    return {
        "id": row.id,
        "school_id": row.school_id,
        "status": row.status,
        "package_code": row.package_code,
        "package_version": row.package_version,
        "student_count": row.student_count,
        "add_ons": list(row.add_ons),
        "payment_option": row.payment_option,
        "months": row.months,
        "total": {"amount_minor": row.total_minor, "currency": row.currency},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def _hash_joins(session: AsyncSession) -> None:
    """For this transaction, join by hash, not by a nested loop of index probes.

    The row-level security predicates leave the planner guessing that 1 % of orders are visible, so it probes
    the joined table once per order (10,000 times); an admin sees every order, and one hash join is cheaper.
    """
    await session.execute(text("SELECT set_config('enable_nestloop', 'off', true)"))


async def _rows(session: AsyncSession, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = await session.execute(text(sql), params)
    return [dict(r) for r in result.mappings()]


async def dashboard(uow: UnitOfWork) -> dict[str, Any]:
    require_admin(uow.actor)
    s = uow.session
    # One scan of orders for both the status counts and the average order value.
    per_status = await _rows(
        s, "SELECT status, currency, count(*) AS n, sum(total_minor) AS total FROM orders GROUP BY status, currency"
    )
    counts: dict[str, int] = {}
    for r in sorted(per_status, key=lambda r: r["status"]):
        counts[r["status"]] = counts.get(r["status"], 0) + r["n"]
    revenue = await _rows(
        s,
        "SELECT currency, sum(amount_minor)::bigint AS amount_minor FROM payments_received"
        " WHERE received_at >= date_trunc('month', now()) GROUP BY currency ORDER BY currency",
    )
    average = _average_order_value([r for r in per_status if r["status"] != "cancelled"])
    utilisation = await _rows(
        s,
        f"""
        SELECT m.member, count(*) AS active_orders, coalesce(tm.capacity, 3) AS capacity,
               round(100.0 * count(*) / coalesce(tm.capacity, 3))::int AS utilisation_percent
        FROM orders o CROSS JOIN LATERAL unnest(o.team) AS m(member)
        LEFT JOIN team_members tm ON tm.member = m.member
        WHERE o.status IN {ACTIVE_SQL}
        GROUP BY m.member, tm.capacity ORDER BY m.member
        """,
    )
    overdue = await _rows(s, "SELECT count(*) AS n FROM tasks WHERE status <> 'done' AND due_date < current_date")
    completed, cancelled = counts.get("completed", 0), counts.get("cancelled", 0)
    return {
        "active_projects": sum(n for status, n in counts.items() if status in ACTIVE),
        "revenue_this_month": revenue,
        "average_order_value": average,
        "team_utilisation": utilisation,
        "success_rate": None if completed + cancelled == 0 else round(completed / (completed + cancelled), 4),
        "orders_by_status": counts,
        "overdue_tasks": overdue[0]["n"],
    }


def _average_order_value(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """round(avg(total_minor)) per currency, from per-group counts and sums (PostgreSQL rounds half away from 0)."""
    sums: dict[str, list[int]] = {}
    for r in rows:
        n_total = sums.setdefault(r["currency"], [0, 0])
        n_total[0] += r["n"]
        n_total[1] += int(r["total"])
    return [
        {"currency": currency, "amount_minor": int((Decimal(total) / n).quantize(Decimal(1), ROUND_HALF_UP))}
        for currency, (n, total) in sorted(sums.items())
    ]


async def analytics(
    uow: UnitOfWork, *, start: date, end: date, group_by: Literal["month", "package"]
) -> dict[str, Any]:
    """Orders, their value, revenue received and conversion from quotes, per month or per package."""
    require_admin(uow.actor)
    # Grouped on date_trunc (cheap per row); the label is formatted once per group, not once per row.
    month = group_by == "month"
    key = "date_trunc('month', {t})" if month else "{p}"
    label = "to_char(g.bucket, 'YYYY-MM')" if month else "g.bucket"
    order_key = key.format(t="o.created_at", p="o.package_code")
    quote_key = key.format(t="q.created_at", p="q.package_code")
    pay_key = key.format(t="r.received_at", p="o.package_code")
    # Per month the payment's order is not needed (every payment has one: foreign key; admins see all).
    pay_from = "payments_received r" if month else "payments_received r JOIN orders o ON o.id = r.order_id"
    if not month:
        await _hash_joins(uow.session)
    # `to` is inclusive; the calendar's last day has no next one (it holds no orders either)
    params = {"start": start, "end": end + timedelta(days=1) if end < date.max else end}
    window = "{col} >= :start AND {col} < :end"
    orders = await _rows(
        uow.session,
        f"SELECT {label} AS bucket, g.currency, g.orders, g.order_value_minor FROM"
        f" (SELECT {order_key} AS bucket, o.currency, count(*) AS orders,"
        f" sum(o.total_minor)::bigint AS order_value_minor"
        f" FROM orders o WHERE {window.format(col='o.created_at')} GROUP BY 1, 2) g",
        **params,
    )
    quotes = await _rows(
        uow.session,
        f"SELECT {label} AS bucket, g.quotes FROM (SELECT {quote_key} AS bucket, count(*) AS quotes FROM quotes q"
        f" WHERE {window.format(col='q.created_at')} GROUP BY 1) g",
        **params,
    )
    revenue = await _rows(
        uow.session,
        f"SELECT {label} AS bucket, g.currency, g.revenue_minor FROM"
        f" (SELECT {pay_key} AS bucket, r.currency, sum(r.amount_minor)::bigint AS revenue_minor"
        f" FROM {pay_from} WHERE {window.format(col='r.received_at')} GROUP BY 1, 2) g",
        **params,
    )
    buckets: dict[str, dict[str, Any]] = {}

    def bucket(name: str) -> dict[str, Any]:
        return buckets.setdefault(name, {"key": name, "orders": 0, "quotes": 0, "order_value": [], "revenue": []})

    for r in orders:
        b = bucket(r["bucket"])
        b["orders"] += r["orders"]
        b["order_value"].append({"amount_minor": r["order_value_minor"], "currency": r["currency"]})
    for r in quotes:
        bucket(r["bucket"])["quotes"] += r["quotes"]
    for r in revenue:
        bucket(r["bucket"])["revenue"].append({"amount_minor": r["revenue_minor"], "currency": r["currency"]})
    for b in buckets.values():
        b["conversion"] = None if b["quotes"] == 0 else round(b["orders"] / b["quotes"], 4)
    return {"from": start, "to": end, "group_by": group_by, "groups": sorted(buckets.values(), key=lambda b: b["key"])}


async def team_performance(uow: UnitOfWork) -> list[dict[str, Any]]:
    require_admin(uow.actor)
    # Milestone counts come from order_milestone_stats (kept by triggers on milestones, migration 0004): one row
    # per order instead of an aggregate over every milestone.
    await _hash_joins(uow.session)
    return await _rows(
        uow.session,
        f"""
        SELECT m.member,
               count(*) FILTER (WHERE o.status IN {ACTIVE_SQL}) AS active_orders,
               count(*) FILTER (WHERE o.status = 'completed') AS completed_orders,
               round(sum(p.on_time)::numeric / nullif(sum(p.done), 0), 4)::float AS on_time_milestone_rate,
               round(avg(extract(epoch FROM o.closed_at - o.approved_at) / 86400)
                     FILTER (WHERE o.status = 'completed' AND o.approved_at IS NOT NULL), 1)::float
                   AS average_project_days
        FROM orders o CROSS JOIN LATERAL unnest(o.team) AS m(member)
        LEFT JOIN order_milestone_stats p ON p.order_id = o.id
        GROUP BY m.member
        ORDER BY m.member
        """,
    )


async def audit_trail(uow: UnitOfWork, *, entity: str | None, entity_id: str | None, limit: int) -> list[AuditLogRow]:
    require_admin(uow.actor)
    query = select(AuditLogRow).order_by(AuditLogRow.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(AuditLogRow.entity == entity)
    if entity_id is not None:
        query = query.where(AuditLogRow.entity_id == entity_id)
    return list((await uow.session.execute(query)).scalars())
