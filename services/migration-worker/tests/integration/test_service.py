"""Use cases through the composition root: the dry-run gate, events in the outbox, clear errors before
anything is written, rollback to the backup."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from migration_worker.adapters.sources import SourceError
from migration_worker.adapters.target_db import TargetError
from migration_worker.engine import engine as engine_module
from migration_worker.engine.progress import ProgressMeter
from migration_worker.plans import SHIPPED
from migration_worker.service_layer.handlers import (
    MigrationService,
    NeedsDryRun,
    NotConfirmed,
    NotRunYet,
    run_next_due,
)
from migration_worker.settings import Settings
from sqlalchemy import text

from ..helpers import count

pytestmark = pytest.mark.integration
PLAN = "bookings-to-users"
CLI = "from migration_worker.entrypoints.cli import app; app()"


async def _outbox(service: MigrationService) -> list[str]:
    async with service.jobs.db.transaction() as session:
        rows = await session.execute(text("SELECT routing_key FROM outbox ORDER BY created_at, routing_key"))
        return [r[0] for r in rows]


async def _job(service: MigrationService, folder: Path, dsn: str) -> uuid.UUID:
    SHIPPED[PLAN].generate(folder, 400)
    return await service.create_job(SHIPPED[PLAN].plan_file.read_text(), str(folder), target_dsn=dsn)


async def test_run_needs_a_passing_dry_run_or_a_reason(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    job_id = await _job(service, tmp_path, dsn)
    with pytest.raises(NotConfirmed):
        await service.run(job_id, confirm=False)
    with pytest.raises(NeedsDryRun):
        await service.run(job_id, confirm=True)
    assert await count(dsn, "SELECT count(*) FROM users") == 0
    report = await service.run(job_id, confirm=True, force_reason="school approved loading without a dry run")
    assert report["status"] == "ok"
    job = await service.jobs.get(job_id)
    assert job["forced_reason"] == "school approved loading without a dry run"
    assert job["status"] == "completed"


async def test_a_job_whose_dry_run_failed_cannot_be_resumed_into_a_run(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    folder = tmp_path / "not-uploaded-yet"
    job_id = await service.create_job(SHIPPED[PLAN].plan_file.read_text(), str(folder), target_dsn=dsn)
    with pytest.raises(SourceError):
        await service.dry_run(job_id)
    assert (await service.jobs.get(job_id))["status"] == "failed"
    SHIPPED[PLAN].generate(folder, 100)  # the files arrive: resume must not load them unchecked
    with pytest.raises(NeedsDryRun, match="never started a run"):
        await service.resume(job_id)
    assert await count(dsn, "SELECT count(*) FROM users") == 0


async def test_a_refused_offline_run_leaves_the_job_as_it_was(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    job_id = await _job(service, tmp_path, dsn)
    for confirm in (False, True):  # unconfirmed, then without a dry run
        with pytest.raises((NotConfirmed, NeedsDryRun)):
            await service.run(job_id, confirm=confirm, offline=True)
    assert (await service.jobs.get(job_id))["offline_mode"] is False


async def test_a_schedule_needs_confirmation_and_a_forced_one_loads_despite_a_no_go(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    SHIPPED[PLAN].generate(tmp_path, 400)
    strict = SHIPPED[PLAN].plan_file.read_text().replace("go_threshold_pct: 5.0", "go_threshold_pct: 0.0")
    jobs = [await service.create_job(strict, str(tmp_path), target_dsn=dsn) for _ in range(2)]
    now = datetime.now(UTC)
    with pytest.raises(NotConfirmed):
        await service.schedule(jobs[0], now, confirm=False)
    assert (await service.jobs.get(jobs[0]))["status"] == "created"

    await service.schedule(jobs[0], now, confirm=True)
    assert await run_next_due(service) == jobs[0]
    assert (await service.jobs.get(jobs[0]))["status"] == "dry_run_failed"  # no-go when due: not loaded
    assert await count(dsn, "SELECT count(*) FROM users") == 0

    await service.schedule(jobs[1], now, confirm=True, force_reason="the school accepts the rejects")
    assert await run_next_due(service) == jobs[1]
    job = await service.jobs.get(jobs[1])
    assert (job["status"], job["forced_reason"]) == ("completed", "the school accepts the rejects")
    assert await count(dsn, "SELECT count(*) FROM users") > 0


async def test_a_cli_run_stopped_by_ctrl_c_is_interrupted_and_resumes(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    job_id = await _job(service, tmp_path, dsn)
    await service.dry_run(job_id)
    loading = asyncio.Event()

    async def stall_in_load(progress: Any) -> None:
        if progress.phase == "load":
            loading.set()
            await asyncio.sleep(3600)

    run = asyncio.create_task(service.run(job_id, confirm=True, extra_sinks=[stall_in_load]))
    await asyncio.wait_for(loading.wait(), 60)
    run.cancel()  # what asyncio.run does to the CLI's task on Ctrl-C
    with pytest.raises(asyncio.CancelledError):
        await run
    assert (await service.jobs.get(job_id))["status"] == "interrupted"
    report = await service.resume(job_id)
    assert report["status"] == "ok"
    assert (await service.jobs.get(job_id))["status"] == "completed"


async def test_a_dry_run_keeps_its_job_row_fresh(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await _job(service, tmp_path, await make_target(PLAN))
    beats = 0
    original = ProgressMeter.beat

    async def counted(meter: ProgressMeter) -> None:
        nonlocal beats
        beats += 1
        await original(meter)

    monkeypatch.setattr(engine_module, "HEARTBEAT_SECONDS", 0.01)
    monkeypatch.setattr(ProgressMeter, "beat", counted)
    await service.dry_run(job_id)
    assert beats > 0  # the job loop's other replicas see it alive, not abandoned


async def test_events_are_written_to_the_outbox(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    job_id = await _job(service, tmp_path, dsn)
    await service.dry_run(job_id)
    report = await service.run(job_id, confirm=True)
    keys = await _outbox(service)
    assert "migrations.dry_run_completed.v1" in keys
    assert "migrations.job_progress.v1" in keys
    assert keys.count("migrations.job_completed.v1") == 1
    job = await service.jobs.get(job_id)
    assert job["report"]["rows_migrated"] == report["rows_migrated"]
    assert job["progress"]["phase"] in ("verify", "load")


async def test_unreadable_source_fails_before_anything_is_written(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    job_id = await service.create_job(SHIPPED[PLAN].plan_file.read_text(), str(tmp_path / "nowhere"), target_dsn=dsn)
    with pytest.raises(SourceError, match="does not exist"):
        await service.dry_run(job_id)
    with pytest.raises(SourceError, match="does not exist"):
        await service.run(job_id, confirm=True, force_reason="test")
    assert await count(dsn, "SELECT count(*) FROM users") == 0
    assert "migrations.job_failed.v1" in await _outbox(service)
    assert (await service.jobs.get(job_id))["status"] == "failed"


async def test_target_missing_a_table_fails_before_anything_is_written(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    conn = await asyncpg.connect(dsn)
    await conn.execute("DROP TABLE user_statistics")
    await conn.close()
    job_id = await _job(service, tmp_path, dsn)
    with pytest.raises(TargetError, match="user_statistics does not exist"):
        await service.dry_run(job_id)
    with pytest.raises(TargetError, match="user_statistics does not exist"):
        await service.run(job_id, confirm=True, force_reason="test")
    assert await count(dsn, "SELECT count(*) FROM users") == 0
    assert await count(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'oneclass_migration%'") == 0


async def test_rollback_restores_the_backup(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    conn = await asyncpg.connect(dsn)
    await conn.execute("INSERT INTO users (legacy_key, email, full_name) VALUES ('x@y.zw', 'x@y.zw', 'Before')")
    await conn.close()
    job_id = await _job(service, tmp_path, dsn)
    await service.dry_run(job_id)
    await service.run(job_id, confirm=True)
    assert await count(dsn, "SELECT count(*) FROM users") > 1
    with pytest.raises(NotConfirmed):
        await service.rollback(job_id, confirm=False)
    await service.jobs.update(job_id, status="running")  # as while a run (here or on a replica) goes on
    with pytest.raises(NotRunYet, match="still reporting"):
        await service.rollback(job_id, confirm=True)
    assert await count(dsn, "SELECT count(*) FROM bookings") > 0
    await service.jobs.update(job_id, status="completed")
    restored = await service.rollback(job_id, confirm=True)
    assert restored["users"] == 1
    assert await count(dsn, "SELECT count(*) FROM users") == 1
    assert await count(dsn, "SELECT count(*) FROM bookings") == 0
    assert await count(dsn, "SELECT count(*) FROM users WHERE full_name = 'Before'") == 1


def test_cli_refuses_a_bad_plan_file_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text("name: x\nsource: {kind: csv}\nentities: []\n")
    result = subprocess.run(
        [sys.executable, "-c", CLI, "plan", "validate", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2
    assert "entities" in result.stdout
    assert "at least 1 item" in result.stdout


async def test_cli_report_to_a_pipe_is_the_report_unwrapped(
    service: MigrationService, settings: Settings, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    job_id = await _job(service, tmp_path, await make_target(PLAN))
    await service.dry_run(job_id)
    await service.run(job_id, confirm=True)

    def report(fmt: str) -> str:
        return _cli(settings, "report", str(job_id), "--format", fmt, check=True).stdout

    assert json.loads(report("json"))["job_id"] == str(job_id)
    rows = [line for line in report("markdown").splitlines() if line.startswith("|")]
    assert len(rows) > 5
    assert all(line.endswith("|") for line in rows)  # no table row broken across lines


async def test_a_job_that_has_not_run_has_nothing_to_verify_report_or_roll_back(
    service: MigrationService, settings: Settings, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    job_id = await _job(service, tmp_path, await make_target(PLAN))
    await service.dry_run(job_id)
    for action in (service.verify(job_id), service.report(job_id), service.rollback(job_id, confirm=True)):
        with pytest.raises(NotRunYet, match="has not run"):
            await action
    for args in (["report", str(job_id)], ["report", str(job_id), "--format", "xml"]):
        result = _cli(settings, *args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
    assert "has not run" in _cli(settings, "verify", str(job_id)).stdout


def _cli(settings: Settings, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`oneclass-migrate` in its own process, on the test's worker database."""
    env = {**os.environ, "MIGRATIONS_DATABASE_URL": settings.database_url, "MIGRATIONS_LOG_DIR": settings.log_dir}
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env, check=check)


async def test_a_column_the_plan_reads_missing_from_the_file_is_named(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    job_id = await _job(service, tmp_path, dsn)
    bookings = tmp_path / "bookings.csv"
    header, rest = bookings.read_text(encoding="utf-8").split("\n", 1)
    assert "customer_email" in header.split(",")
    bookings.write_text(header.replace("customer_email", "email_address") + "\n" + rest, encoding="utf-8")
    with pytest.raises(SourceError, match="has no column 'customer_email' that entity 'users' reads"):
        await service.dry_run(job_id)
    assert await count(dsn, "SELECT count(*) FROM users") == 0


async def test_a_target_constraint_the_sample_batch_breaks_does_not_crash_the_dry_run(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    conn = await asyncpg.connect(dsn)
    await conn.execute("ALTER TABLE users ADD CHECK (email !~ '^[a-f]')")  # the plan knows nothing of it
    await conn.close()
    job_id = await _job(service, tmp_path, dsn)
    result = await service.dry_run(job_id)
    assert result["rows_total"] > 0
    report = await service.run(job_id, confirm=True, force_reason="test")
    [users] = [e for e in report["entities"] if e["entity"] == "users"]
    assert any(reason.startswith("insert:23514") for reason in users["reasons"]), users  # rejected, not failed


async def test_purge_drops_the_source_archive_but_keeps_the_accounting(
    service: MigrationService, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    job_id = await _job(service, tmp_path, dsn)
    await service.dry_run(job_id)
    before = await service.run(job_id, confirm=True)
    staged = f"SELECT count(*) FROM pg_tables WHERE tablename LIKE 's{job_id.hex[:16]}%'"
    assert await count(dsn, staged) > 0
    assert await service.purge(older_than_days=30) == []
    await service.jobs.update(job_id, status="running")  # a job in flight keeps its staging, whatever its age
    assert await service.purge(older_than_days=0) == []
    assert await count(dsn, staged) > 0
    await service.jobs.update(job_id, status="completed")
    assert job_id in await service.purge(older_than_days=0)
    assert await count(dsn, staged) == 0
    after = await service.verify(job_id)
    assert after["rows_migrated"] == before["rows_migrated"]
    assert after["unaccounted"] == 0
