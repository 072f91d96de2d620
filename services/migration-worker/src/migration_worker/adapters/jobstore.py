"""Migration jobs in the worker's database; events go to the outbox in the same transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.envelope import Payload
from contracts.migrations import LoadBatch
from servicekit.db import Database
from servicekit.outbox import add_event, envelope_for
from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from migration_worker.adapters.tables import batch_dispatches, jobs

# A job some process is working on; in flight also one about to be: its staging is in use.
LIVE = ("claimed", "dry_running", "running")
IN_FLIGHT = ("scheduled", *LIVE)


def _saga_id(order_id: uuid.UUID | None, job_id: uuid.UUID) -> uuid.UUID:
    """What a job's events correlate on: an order's job is a step of the order's saga; a CLI job stands alone."""
    return order_id or job_id


class JobNotFound(LookupError):
    pass


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, **values: Any) -> uuid.UUID:
        job_id = values.setdefault("id", uuid.uuid4())
        async with self.db.transaction() as session:
            await session.execute(jobs.insert().values(**values))
        return uuid.UUID(str(job_id))

    async def get(self, job_id: uuid.UUID | str) -> dict[str, Any]:
        async with self.db.transaction() as session:
            row = (await session.execute(select(jobs).where(jobs.c.id == uuid.UUID(str(job_id))))).mappings().first()
        if row is None:
            raise JobNotFound(f"no migration job {job_id}")
        return dict(row)

    async def exists(self, job_id: uuid.UUID | str) -> bool:
        try:
            await self.get(job_id)
        except JobNotFound:
            return False
        return True

    async def update(self, job_id: uuid.UUID | str, *events: Payload, **values: Any) -> None:
        """Change the job and publish its events atomically (transactional outbox)."""
        job_uuid = uuid.UUID(str(job_id))
        async with self.db.transaction() as session:
            row = (
                await session.execute(select(jobs.c.school_id, jobs.c.order_id).where(jobs.c.id == job_uuid))
            ).first()
            if row is None:
                raise JobNotFound(f"no migration job {job_id}")
            await session.execute(
                update(jobs).where(jobs.c.id == job_uuid).values(**values, updated_at=datetime.now(UTC))
            )
            correlation = _saga_id(row.order_id, job_uuid)
            for payload in events:
                await add_event(session, envelope_for(payload, school_id=row.school_id, correlation_id=correlation))

    async def dispatch_batches(
        self, job_id: uuid.UUID | str, entity: str, batches: list[tuple[int, int, int]], worker: str
    ) -> int:
        """Record the batch ranges and send one load_batch command per batch, in one transaction. Ranges
        already dispatched (a coordinator resuming after a crash) are not sent again. Returns how many
        were sent."""
        job_uuid = uuid.UUID(str(job_id))
        if not batches:
            return 0
        async with self.db.transaction() as session:
            school_id = (await session.execute(select(jobs.c.school_id).where(jobs.c.id == job_uuid))).scalar()
            new = await session.execute(
                insert(batch_dispatches)
                .values(
                    [
                        {
                            "job_id": job_uuid,
                            "entity": entity,
                            "batch_no": n,
                            "lo": lo,
                            "hi": hi,
                            "dispatched_by": worker,
                        }
                        for n, lo, hi in batches
                    ]
                )
                .on_conflict_do_nothing()
                .returning(batch_dispatches.c.batch_no, batch_dispatches.c.lo, batch_dispatches.c.hi)
            )
            sent = 0
            for batch_no, lo, hi in new:
                command = LoadBatch(job_id=job_uuid, entity=entity, batch_no=batch_no, lo=lo, hi=hi)
                await add_event(session, envelope_for(command, school_id=school_id, correlation_id=job_uuid))
                sent += 1
        return sent

    async def latest_passing_dry_run(
        self, plan_name: str, source_location: str, target_dsn: str
    ) -> dict[str, Any] | None:
        async with self.db.transaction() as session:
            row = (
                (
                    await session.execute(
                        select(jobs)
                        .where(
                            jobs.c.plan_name == plan_name,
                            jobs.c.source_location == source_location,
                            jobs.c.target_dsn == target_dsn,
                            jobs.c.dry_run["verdict"].astext == "go",
                        )
                        .order_by(jobs.c.created_at.desc())
                        .limit(1)
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    @staticmethod
    async def create_in(session: AsyncSession, *events: Payload, **values: Any) -> bool:
        """Create a job inside the caller's transaction (a consumer's inbox transaction); False if the
        job already exists, so a redelivered command creates nothing twice."""
        created = await session.execute(
            insert(jobs).values(**values).on_conflict_do_nothing(index_elements=["id"]).returning(jobs.c.id)
        )
        if created.first() is None:
            return False
        correlation = _saga_id(values.get("order_id"), values["id"])
        for payload in events:
            await add_event(
                session, envelope_for(payload, school_id=values.get("school_id"), correlation_id=correlation)
            )
        return True

    async def claim_due(self, now: datetime, worker: str, stale_after: timedelta) -> dict[str, Any] | None:
        """Atomically take one job that is due, or one whose worker stopped reporting (it died): safe with
        any number of replicas polling at once.

        Only jobs the job loop owns (scheduled: `start_job` or `run --at`) are taken over. A job the CLI
        runs has no `scheduled_for` and stays the CLI's: stopped there, it stays stopped until `resume`."""
        async with self.db.transaction() as session:
            candidate = (
                select(jobs.c.id)
                .where(
                    or_(
                        (jobs.c.status == "scheduled") & (jobs.c.scheduled_for <= now),
                        jobs.c.status.in_(("running", "dry_running"))
                        & (jobs.c.updated_at < now - stale_after)
                        & jobs.c.scheduled_for.is_not(None),
                    )
                )
                .order_by(jobs.c.scheduled_for)
                .limit(1)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            claimed = await session.execute(
                update(jobs)
                .where(jobs.c.id == candidate)
                .values(
                    status=case((jobs.c.status == "scheduled", "claimed"), else_=jobs.c.status),
                    progress={"worker": worker},
                    updated_at=now,
                )
                .returning(*jobs.c)
            )
            row = claimed.mappings().first()
        return dict(row) if row else None

    async def older_than(self, cutoff: datetime) -> list[dict[str, Any]]:
        """Jobs created before `cutoff` that are at rest: a job in flight keeps its staging whatever its age."""
        async with self.db.transaction() as session:
            rows = (
                await session.execute(select(jobs).where(jobs.c.created_at < cutoff, jobs.c.status.not_in(IN_FLIGHT)))
            ).mappings()
            return [dict(r) for r in rows]
