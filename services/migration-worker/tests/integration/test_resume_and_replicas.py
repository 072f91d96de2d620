"""Crash safety: a worker SIGKILLed mid-run resumes to exactly the target an uninterrupted run builds,
and two replicas on one job build the same target as one."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from migration_worker.adapters.sources import CsvFolderSource
from migration_worker.adapters.target_db import check_target
from migration_worker.domain.plan import load_plan
from migration_worker.engine.engine import EngineOptions, MigrationEngine, StagingLost
from migration_worker.plans import SHIPPED
from migration_worker.service_layer.handlers import MigrationService
from migration_worker.settings import Settings

from ..helpers import target_checksum

pytestmark = pytest.mark.integration
PLAN = "school-sis"


async def _reference(tmp_path: Path, make_target: Callable[..., Any]) -> dict[str, tuple[int, str]]:
    dsn = await make_target(PLAN)
    plan = load_plan(SHIPPED[PLAN].plan_file)
    await MigrationEngine(plan, CsvFolderSource(tmp_path), dsn, EngineOptions(concurrency=1)).run(str(uuid.uuid4()))
    return await target_checksum(dsn, plan)


async def _committed_batches(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('oneclass_migration.batches') IS NOT NULL"):
            return 0
        return int(await conn.fetchval("SELECT count(*) FROM oneclass_migration.batches"))
    finally:
        await conn.close()


async def test_sigkill_mid_run_then_resume_matches_uninterrupted_run(
    service: MigrationService, settings: Settings, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    SHIPPED[PLAN].generate(tmp_path, 700)
    expected = await _reference(tmp_path, make_target)
    dsn = await make_target(PLAN)
    job_id = await service.create_job(SHIPPED[PLAN].plan_file.read_text(), str(tmp_path), target_dsn=dsn)
    assert (await service.dry_run(job_id))["verdict"] == "go"

    env = {
        **os.environ,
        "MIGRATIONS_DATABASE_URL": settings.database_url,
        "MIGRATIONS_BATCH_SIZE": "25",
        "MIGRATIONS_LOG_DIR": settings.log_dir,
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from migration_worker.entrypoints.cli import app; app()",
        "run",
        str(job_id),
        "--confirm",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(1500):
            if await _committed_batches(dsn) >= 40:
                break
            await asyncio.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
    finally:
        await asyncio.wait_for(worker.wait(), 30)
    assert worker.returncode == -signal.SIGKILL, "the worker must be killed mid-run for this test to mean anything"
    assert await target_checksum(dsn, load_plan(SHIPPED[PLAN].plan_file)) != expected

    report = await service.resume(job_id)
    assert report["status"] == "ok", [e for e in report["entities"] if e["status"] == "failed"]
    assert report["unaccounted"] == 0
    assert await target_checksum(dsn, load_plan(SHIPPED[PLAN].plan_file)) == expected
    job = await service.jobs.get(job_id)
    assert job["status"] == "completed"


async def test_two_replicas_build_the_same_target_as_one(make_target: Callable[..., Any], tmp_path: Path) -> None:
    SHIPPED[PLAN].generate(tmp_path, 500)
    expected = await _reference(tmp_path, make_target)
    dsn = await make_target(PLAN)
    plan = load_plan(SHIPPED[PLAN].plan_file)
    job = str(uuid.uuid4())
    replicas = [
        MigrationEngine(plan, CsvFolderSource(tmp_path), dsn, EngineOptions(concurrency=2, batch_size=30, worker=name))
        for name in ("replica-a", "replica-b")
    ]
    results = await asyncio.gather(*(r.run(job) for r in replicas))
    assert await target_checksum(dsn, plan) == expected
    for accounts in results:
        assert all(a.unaccounted == 0 for a in accounts)
    conn = await asyncpg.connect(dsn)
    try:
        doubled = await conn.fetchval(
            "SELECT count(*) FROM (SELECT entity, lo FROM oneclass_migration.batches "
            "GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
    finally:
        await conn.close()
    assert doubled == 0


class _Crash(Exception):
    """Raised by a progress sink: the run stops there, as if the database had gone down."""


async def _wipe_unlogged(dsn: str) -> int:
    """What crash recovery does to every unlogged table (the engine's staging): reset it to empty."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relpersistence = 'u' AND c.relkind = 'r'"  # partitions too (their parent is not unlogged)
        )
        await conn.execute(f"TRUNCATE {', '.join(t[0] for t in tables)}")
        return len(tables)
    finally:
        await conn.close()


async def test_a_database_crash_before_a_derived_entity_loses_none_of_its_rows(
    make_target: Callable[..., Any], tmp_path: Path
) -> None:
    name = "bookings-to-users"
    SHIPPED[name].generate(tmp_path, 600)
    plan = load_plan(SHIPPED[name].plan_file)

    def engine(dsn: str, *sinks: Any) -> MigrationEngine:
        return MigrationEngine(plan, CsvFolderSource(tmp_path), dsn, EngineOptions(concurrency=1), progress=[*sinks])

    def summary(accounts: list[Any]) -> list[tuple[Any, ...]]:
        return [(a.entity, a.source, a.migrated, a.rejected, a.merged, a.missing_in_target) for a in accounts]

    async def target() -> str:
        dsn = await make_target(name)
        conn = await asyncpg.connect(dsn)
        await conn.execute("ALTER TABLE bookings ADD CHECK (legacy_key !~ '7$')")  # a tenth refused at insert
        await conn.close()
        return str(dsn)

    reference_dsn = await target()
    reference = {a.entity: a for a in await engine(reference_dsn).run(str(uuid.uuid4()))}
    expected = summary(list(reference.values()))
    assert reference["payments"].source > 0
    # rows the target refused at insert, which the ledger must restore when the prepared rows are rebuilt
    assert any(reason.startswith("insert:") for reason in reference["bookings"].reasons)

    async def crash_before_payments(progress: Any) -> None:
        if progress.entity == "payments":
            raise _Crash

    dsn = await target()
    job = str(uuid.uuid4())
    with pytest.raises(_Crash):
        await engine(dsn, crash_before_payments).run(job)  # users and bookings are loaded by now
    assert await _wipe_unlogged(dsn) > 0

    assert summary(await engine(dsn).run(job)) == expected
    assert await target_checksum(dsn, plan) == await target_checksum(reference_dsn, plan)


async def test_a_batch_whose_prepared_rows_a_crash_wiped_is_not_checkpointed_as_loaded(
    make_target: Callable[..., Any], tmp_path: Path
) -> None:
    SHIPPED[PLAN].generate(tmp_path, 300)
    plan = load_plan(SHIPPED[PLAN].plan_file)
    dsn = await make_target(PLAN)
    engine = MigrationEngine(plan, CsvFolderSource(tmp_path), dsn, EngineOptions(concurrency=1))
    job = str(uuid.uuid4())
    await engine.run(job)
    first = plan.entities[0]
    conn = await asyncpg.connect(dsn)
    try:
        # The replica's batch message outlived a crash: staging is empty, the batch not yet checkpointed.
        lo, hi = await conn.fetchrow(
            "DELETE FROM oneclass_migration.batches WHERE job_id = $1 AND entity = $2 AND batch_no = 0 "
            "RETURNING lo, hi",
            uuid.UUID(job),
            first.name,
        )
        assert await _wipe_unlogged(dsn) > 0
        sql = engine.entity_sqls(job, await check_target(conn, plan))[first.name]
        with pytest.raises(StagingLost):
            await engine.load_batch(conn, job, first, sql, 0, lo, hi)
        checkpoints = "SELECT count(*) FROM oneclass_migration.batches WHERE entity = $1 AND batch_no = 0"
        assert await conn.fetchval(checkpoints, first.name) == 0
    finally:
        await conn.close()
