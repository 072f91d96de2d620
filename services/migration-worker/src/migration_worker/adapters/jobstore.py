"""Migration jobs in the worker's database; events go to the outbox in the same transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Payload
from servicekit.db import Database
from servicekit.outbox import add_event, envelope_for
from sqlalchemy import select, update

from migration_worker.adapters.tables import jobs


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
            row = (await session.execute(select(jobs.c.school_id).where(jobs.c.id == job_uuid))).first()
            if row is None:
                raise JobNotFound(f"no migration job {job_id}")
            await session.execute(
                update(jobs).where(jobs.c.id == job_uuid).values(**values, updated_at=datetime.now(UTC))
            )
            for payload in events:
                await add_event(session, envelope_for(payload, school_id=row.school_id, correlation_id=job_uuid))

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

    async def due(self, now: datetime) -> list[dict[str, Any]]:
        async with self.db.transaction() as session:
            rows = (
                await session.execute(select(jobs).where(jobs.c.status == "scheduled", jobs.c.scheduled_for <= now))
            ).mappings()
            return [dict(r) for r in rows]

    async def older_than(self, cutoff: datetime) -> list[dict[str, Any]]:
        async with self.db.transaction() as session:
            rows = (await session.execute(select(jobs).where(jobs.c.created_at < cutoff))).mappings()
            return [dict(r) for r in rows]
