"""Scheduled checks: installments falling due and going overdue. One replica's run wins.

A transaction-scoped advisory lock lets one replica run at a time; the `*_announced_at` marks make each
announcement happen once even across runs, so a second replica right after finds nothing to do.
"""

from datetime import date, timedelta
from typing import Any

from contracts.money import Money
from contracts.payments import InstallmentOverdue
from servicekit.db import Database
from servicekit.metrics import INSTALLMENTS_OVERDUE
from servicekit.outbox import add_event
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from payments.adapters.tables import InstallmentRow, JobRunRow, now
from payments.service_layer.events import new_event
from payments.service_layer.plans import installment_due

LOCK_KEY = "payments.schedule"


async def try_lock(session: AsyncSession, name: str) -> bool:
    acquired = await session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtext(name))))
    return bool(acquired)


async def run_due_checks(db: Database, today: date, grace_days: int) -> dict[str, Any] | None:
    """Announce due and overdue installments; None when another replica holds the lock."""
    async with db.transaction() as session:
        if not await try_lock(session, LOCK_KEY):
            return None
        run = JobRunRow(job="due_checks")
        session.add(run)
        due = (
            await session.scalars(
                select(InstallmentRow)
                .where(
                    InstallmentRow.status == "open",
                    col(InstallmentRow.due_date) <= today,
                    col(InstallmentRow.due_announced_at).is_(None),
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in due:
            row.due_announced_at = now()
            await add_event(session, new_event(installment_due(row), school_id=row.school_id))
        overdue = (
            await session.scalars(
                select(InstallmentRow)
                .where(
                    InstallmentRow.status == "open",
                    col(InstallmentRow.due_date) < today - timedelta(days=grace_days),
                    col(InstallmentRow.overdue_announced_at).is_(None),
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in overdue:
            assert row.due_date is not None
            row.overdue_announced_at = now()
            event = InstallmentOverdue(
                installment_id=row.id,
                order_id=row.order_id,
                school_id=row.school_id,
                sequence=row.sequence,
                amount=Money(amount_minor=row.amount_minor - row.paid_minor, currency=row.currency),
                due_date=row.due_date,
                days_overdue=(today - row.due_date).days,
            )
            await add_event(session, new_event(event, school_id=row.school_id))
            INSTALLMENTS_OVERDUE.inc()
        run.report = {"due": len(due), "overdue": len(overdue), "today": today.isoformat()}
        run.finished_at = now()
        return run.report
