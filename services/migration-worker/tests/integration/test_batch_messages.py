"""Scale-out through batch messages, with real worker processes on the real RabbitMQ and PostgreSQL.

Two replicas run; replica-a coordinates the job (it is the only one polling for due jobs), both consume
the job's load_batch commands from one quorum queue. The target must equal what one in-process worker
builds, every batch must be committed exactly once, and the job API must show who loaded what."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from contracts.migrations import LoadBatch, StartJob
from migration_worker.domain.plan import load_plan
from migration_worker.plans import SHIPPED
from migration_worker.service_layer.handlers import MigrationService
from servicekit.testing import delete_namespace, unique_name
from servicekit.topology import Naming

from tests.support.system import Process, free_port

from ..helpers import reference_checksum, target_checksum

pytestmark = pytest.mark.integration
PLAN = "school-sis"
ROWS = 300
RETRY_DELAYS_MS = [200, 1000, 3000]


@dataclass
class Replicas:
    worker_db: str
    target: str
    workdir: Path
    namespace: str = field(default_factory=lambda: unique_name("t") + ".")
    processes: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def process(self, name: str, *, coordinator: bool) -> Process:
        port = free_port()
        self.ports[name] = port
        env = {
            **os.environ,
            "MIGRATIONS_DATABASE_URL": self.worker_db,
            "MIGRATIONS_TARGET_DATABASE_URL": self.target,
            "MIGRATIONS_HTTP_PORT": str(port),
            "MIGRATIONS_WORKER_NAME": name,
            "MIGRATIONS_BATCH_SIZE": "20",
            "MIGRATIONS_LOG_DIR": str(self.workdir / "log"),
            "MIGRATIONS_PROGRESS_INTERVAL_SECONDS": "0.5",
            # Only the coordinator looks for due jobs; the other replica is woken by nothing but batches.
            "MIGRATIONS_SCHEDULER_POLL_SECONDS": "0.3" if coordinator else "3600",
            "BROKER_NAMESPACE": self.namespace,
            "RETRY_DELAYS_MS": str(RETRY_DELAYS_MS),
            "OUTBOX_POLL_SECONDS": "0.2",
            "OTEL_EXPORTER": "none",
            "LOG_JSON": "false",
        }
        return Process(
            name,
            [sys.executable, "-m", "migration_worker"],
            env,
            f"http://127.0.0.1:{port}/readyz",
            self.workdir / f"{name}.log",
        )

    async def start(self) -> None:
        self.processes = {
            "replica-a": self.process("replica-a", coordinator=True),
            "replica-b": self.process("replica-b", coordinator=False),
        }
        await asyncio.gather(*(asyncio.to_thread(p.start) for p in self.processes.values()))

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.log_tail(30)}" for n, p in self.processes.items())

    async def stop(self) -> None:
        for p in self.processes.values():
            await asyncio.to_thread(p.terminate, 20)
        naming = Naming(self.namespace)
        queues = [naming.queue("migrations", m.routing_key()) for m in (StartJob, LoadBatch)]
        await delete_namespace(self.namespace, queues, RETRY_DELAYS_MS)


@pytest.fixture
async def replicas(worker_db: str, make_target: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Replicas]:
    system = Replicas(worker_db, await make_target(PLAN), tmp_path)
    try:
        yield system
    finally:
        await system.stop()


async def _sql(dsn: str, query: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def _eventually(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 180.0) -> Any:
    for _ in range(int(seconds / 0.1)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not reached")


async def _run_job(service: MigrationService, replicas: Replicas, data: Path) -> Any:
    job_id = await service.create_job(SHIPPED[PLAN].plan_file.read_text(), str(data), target_dsn=replicas.target)
    await service.schedule(job_id, datetime.now(UTC), confirm=True)  # due now: replica-a's job loop claims it
    return job_id


async def _finished(service: MigrationService, job_id: Any, replicas: Replicas) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = await service.jobs.get(job_id)
        return job if job["status"] in ("completed", "failed") else None

    try:
        job = await _eventually(done, "job completion")
    except AssertionError:
        raise AssertionError(replicas.logs()) from None
    assert job["status"] == "completed", (job["error"], replicas.logs())
    return job


async def _assert_exact(replicas: Replicas, job: dict[str, Any], expected: dict[str, tuple[int, str]]) -> None:
    assert await target_checksum(replicas.target, load_plan(SHIPPED[PLAN].plan_file)) == expected
    report = job["report"]
    assert report["unaccounted"] == 0
    for entity in report["entities"]:
        assert entity["source"] == entity["migrated"] + entity["rejected"] + entity["merged"], entity
    # every batch of every entity committed exactly once (the ledger's key is (job, entity, batch_no))
    assert await _sql(
        replicas.target,
        f"SELECT (SELECT count(*) FROM oneclass_migration.batches WHERE job_id = '{job['id']}') = "
        f"(SELECT sum(batch_count) FROM oneclass_migration.entity_runs WHERE job_id = '{job['id']}')",
    )


async def test_two_replicas_share_one_jobs_batches(
    service: MigrationService, replicas: Replicas, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    SHIPPED[PLAN].generate(tmp_path / "data", ROWS)
    expected = await reference_checksum(load_plan(SHIPPED[PLAN].plan_file), tmp_path / "data", await make_target(PLAN))
    await replicas.start()
    job_id = await _run_job(service, replicas, tmp_path / "data")
    job = await _finished(service, job_id, replicas)
    await _assert_exact(replicas, job, expected)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{replicas.ports['replica-b']}") as client:
        status = (await client.get(f"/api/v1/migrations/jobs/{job_id}")).json()
    workers = status["workers"]
    assert set(workers) == {"replica-a", "replica-b"}, workers
    assert all(w["batches"] > 0 for w in workers.values()), workers
    assert sum(w["rows"] for w in workers.values()) == job["report"]["rows_total"]
    assert job["report"]["workers"] == workers


async def test_replica_sigkilled_mid_batch_loses_and_doubles_nothing(
    service: MigrationService, replicas: Replicas, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    SHIPPED[PLAN].generate(tmp_path / "data", ROWS)
    expected = await reference_checksum(load_plan(SHIPPED[PLAN].plan_file), tmp_path / "data", await make_target(PLAN))
    # replica-b's batches dwell in their INSERT (a statement trigger sleeping for its sessions only), so
    # the kill below lands inside an open batch transaction, not between two.
    conn = await asyncpg.connect(replicas.target)
    try:
        await conn.execute(
            "CREATE FUNCTION slow_b() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF current_setting('application_name') = 'replica-b' THEN PERFORM pg_sleep(0.3); END IF; "
            "RETURN NULL; END $$"
        )
        for table in load_plan(SHIPPED[PLAN].plan_file).target_tables:
            await conn.execute(
                f'CREATE TRIGGER slow_b AFTER INSERT ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION slow_b()'
            )
    finally:
        await conn.close()
    await replicas.start()
    job_id = await _run_job(service, replicas, tmp_path / "data")

    async def b_inside_a_batch() -> bool:
        if not await _sql(replicas.target, "SELECT to_regclass('oneclass_migration.batches') IS NOT NULL"):
            return False
        return bool(
            await _sql(
                replicas.target,
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'replica-b' "
                "AND state = 'active' AND query LIKE 'INSERT INTO%') > 0 AND (SELECT count(*) FROM "
                "oneclass_migration.batches WHERE worker = 'replica-b') >= 2",
            )
        )

    await _eventually(b_inside_a_batch, "replica-b inside a batch after committing two")
    victim = replicas.processes["replica-b"]
    victim.kill()
    assert victim.popen is not None
    assert victim.popen.returncode == -signal.SIGKILL
    batches_of_b = await _sql(
        replicas.target, "SELECT count(*) FROM oneclass_migration.batches WHERE worker = 'replica-b'"
    )

    job = await _finished(service, job_id, replicas)
    await _assert_exact(replicas, job, expected)
    workers = job["report"]["workers"]
    assert workers["replica-b"]["batches"] == batches_of_b  # nothing committed by the dead replica after the kill
    assert workers["replica-a"]["batches"] > 0
