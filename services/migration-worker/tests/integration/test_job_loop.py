"""The start_job use case and the job loop without a broker: idempotent acceptance, scheduling, claiming
due and abandoned jobs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from contracts.migrations import DataSource, StartJob
from migration_worker.adapters.tables import jobs
from migration_worker.plans import SHIPPED
from migration_worker.service_layer.handlers import (
    MigrationService,
    UnknownPlan,
    accept_start_job,
    run_next_due,
    source_location,
)
from sqlalchemy import text, update

from ..helpers import count

pytestmark = pytest.mark.integration
PLAN = "bookings-to-users"


def _command(folder: Path, **extra: Any) -> StartJob:
    source = DataSource(source_id=uuid.uuid4(), kind="csv", name="b", location=f"file://{folder}/bookings.csv")
    return StartJob(
        job_id=uuid.uuid4(), order_id=uuid.uuid4(), school_id=uuid.uuid4(), plan=PLAN, data_sources=[source], **extra
    )


async def _keys(service: MigrationService, job_id: uuid.UUID) -> list[str]:
    async with service.jobs.db.transaction() as session:
        rows = await session.execute(
            text("SELECT routing_key FROM outbox WHERE body->'data'->>'job_id' = :id ORDER BY created_at"),
            {"id": str(job_id)},
        )
        return [r[0] for r in rows]


async def test_a_command_creates_one_job_and_the_loop_runs_it(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    service.settings.target_database_url = await make_target(PLAN)
    SHIPPED[PLAN].generate(tmp_path, 200)
    command = _command(tmp_path)
    for expected in (True, False):
        async with service.jobs.db.transaction() as session:
            assert await accept_start_job(service, session, command) is expected
    assert await run_next_due(service) == command.job_id
    assert await run_next_due(service) is None
    job = await service.jobs.get(command.job_id)
    assert job["status"] == "completed"
    assert job["source_location"] == str(tmp_path)
    keys = await _keys(service, command.job_id)
    async with service.jobs.db.transaction() as session:
        correlations = await session.execute(
            text("SELECT DISTINCT body->>'correlation_id' FROM outbox WHERE body->'data'->>'job_id' = :id"),
            {"id": str(command.job_id)},
        )
        assert [r[0] for r in correlations] == [str(command.order_id)]  # the order saga's id
    assert keys.count("migrations.dry_run_completed.v1") == 1
    assert keys.count("migrations.job_completed.v1") == 1
    assert keys.index("migrations.dry_run_completed.v1") < keys.index("migrations.job_completed.v1")


async def test_future_job_is_announced_and_waits(service: MigrationService, tmp_path: Path) -> None:
    command = _command(tmp_path, scheduled_for=datetime.now(UTC) + timedelta(hours=3))
    async with service.jobs.db.transaction() as session:
        await accept_start_job(service, session, command)
    assert await run_next_due(service) is None
    assert await _keys(service, command.job_id) == ["migrations.job_scheduled.v1"]
    async with service.jobs.db.transaction() as session:
        [correlation] = (await session.execute(text("SELECT body->>'correlation_id' FROM outbox"))).scalars()
    assert correlation == str(command.order_id)
    assert (await service.jobs.get(command.job_id))["status"] == "scheduled"


async def test_an_abandoned_running_job_is_resumed(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    SHIPPED[PLAN].generate(tmp_path, 200)
    job_id = await service.create_job(SHIPPED[PLAN].plan_file.read_text(), str(tmp_path), target_dsn=dsn)
    await service.dry_run(job_id)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    async with service.jobs.db.transaction() as session:  # the loop started it, and its worker died an hour ago
        await session.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(status="running", scheduled_for=an_hour_ago, started_at=an_hour_ago, updated_at=an_hour_ago)
        )
    assert await run_next_due(service) == job_id
    assert (await service.jobs.get(job_id))["status"] == "completed"


@pytest.mark.parametrize("status", ["running", "dry_running"])
async def test_a_job_the_cli_stopped_is_not_taken_over_by_the_loop(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path, status: str
) -> None:
    dsn = await make_target(PLAN)
    SHIPPED[PLAN].generate(tmp_path, 50)
    job_id = await service.create_job(SHIPPED[PLAN].plan_file.read_text(), str(tmp_path), target_dsn=dsn)
    async with service.jobs.db.transaction() as session:  # Ctrl-C in the CLI an hour ago, mid-way
        await session.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(status=status, updated_at=datetime.now(UTC) - timedelta(hours=1))
        )
    assert await run_next_due(service) is None
    assert (await service.jobs.get(job_id))["status"] == status
    assert await count(dsn, "SELECT count(*) FROM users") == 0


async def test_unknown_plan_and_missing_source_are_refused(service: MigrationService, tmp_path: Path) -> None:
    command = _command(tmp_path).model_copy(update={"plan": "no-such-plan"})
    async with service.jobs.db.transaction() as session:
        with pytest.raises(UnknownPlan):
            await accept_start_job(service, session, command)
    with pytest.raises(ValueError, match="no data source"):
        source_location([])
