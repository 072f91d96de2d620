"""A migration as part of the fault workload, driven and checked only through public surfaces: the
`oneclass-migrate` CLI (sample data, an undisturbed reference run), the `migrations.cmd.start_job.v1`
command on the broker (what orders sends), the status and report API, and the target database.

The target checksum does not depend on how the worker splits its work: per target table, the row
count and an md5 over every column, with surrogate ids left out and foreign keys replaced by the
referenced row's legacy key (new ids depend on commit order; the content must not)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import yaml
from contracts.envelope import Envelope
from contracts.migrations import DataSource, StartJob
from migration_worker.plans import SHIPPED
from servicekit.testing import AMQP_URL, create_database, database_url, drop_database, migrated_database, unique_name

from tests.support.system import ROOT, System

PLAN = "school-sis"
CLI = [sys.executable, "-c", "from migration_worker.entrypoints.cli import app; app()"]
FINISHED = ("completed", "failed")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [*CLI, *args], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"oneclass-migrate {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def throwaway_targets(count: int) -> Iterator[list[str]]:
    """Empty target databases (plain libpq URLs), dropped afterwards."""
    names = [unique_name("faults_migtarget") for _ in range(count)]
    for name in names:
        asyncio.run(create_database(name))
    try:
        yield [database_url(name, driver="postgresql") for name in names]
    finally:
        for name in names:
            asyncio.run(drop_database(name))


def sample_data(folder: Path, rows: int, *targets: str) -> dict[str, int]:
    """Dirty sample data of the plan, written by the CLI (the same seed each time), which also creates
    the plan's tables in each target. Returns the data rows per CSV file."""
    for target in targets:
        cli("generate-sample", PLAN, "-o", str(folder), "--rows", str(rows), "--create-target", target)
    return {path.name: _csv_rows(path) for path in sorted(folder.glob("*.csv"))}


def _csv_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def reference_run(folder: Path, target: str, workdir: Path) -> dict[str, Any]:
    """The same data loaded by the CLI with nothing disturbing it: dry run, then run."""

    async def run() -> dict[str, Any]:
        ini = ROOT / "services/migration-worker/alembic.ini"
        async with migrated_database("faults_migref", ini) as worker_db:
            env = {"MIGRATIONS_DATABASE_URL": worker_db, "MIGRATIONS_LOG_DIR": str(workdir / "reference-log")}
            dry = workdir / "reference-dry-run.json"
            plan_file = str(SHIPPED[PLAN].plan_file)
            await asyncio.to_thread(
                cli, "dry-run", plan_file, "--source", str(folder), "--target", target, "--output", str(dry), env=env
            )
            job_id = json.loads(dry.read_text())["job_id"]
            await asyncio.to_thread(cli, "run", job_id, "--confirm", env=env)
            return {"job_id": job_id, **json.loads(dry.read_text())}

    return asyncio.run(run())


def start_job(system: System, folder: Path) -> uuid.UUID:
    """What orders sends when an order enters data migration, published straight onto this run's broker."""
    command = StartJob(
        job_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        school_id=uuid.uuid4(),
        plan=PLAN,
        data_sources=[DataSource(source_id=uuid.uuid4(), kind="csv", name="sis export", location=f"file://{folder}")],
    )
    envelope = Envelope.wrap(command, school_id=command.school_id)

    async def publish() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(f"{system.namespace}oneclass.events", ensure=True)
            await exchange.publish(
                aio_pika.Message(
                    envelope.model_dump_json().encode(),
                    message_id=str(envelope.event_id),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=envelope.routing_key,
                mandatory=True,
            )

    asyncio.run(publish())
    return command.job_id


def job_status(system: System, job_id: uuid.UUID) -> dict[str, Any] | None:
    response = httpx.get(f"{system.url('migration-worker')}/api/v1/migrations/jobs/{job_id}", timeout=10)
    return dict(response.json()) if response.status_code == 200 else None


def wait_for_job(system: System, job_id: uuid.UUID, timeout: float) -> dict[str, Any] | None:
    """The job's status once it has finished, or its last status when the time ran out."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while True:
        with contextlib.suppress(httpx.HTTPError):
            last = job_status(system, job_id) or last
        if (last and last["status"] in FINISHED) or time.monotonic() > deadline:
            return last
        time.sleep(1.0)


def report(system: System, job_id: uuid.UUID) -> dict[str, Any]:
    url = f"{system.url('migration-worker')}/api/v1/migrations/jobs/{job_id}/report"
    return dict(httpx.get(url, params={"format": "json"}, timeout=30).json())


@dataclass
class Accounting:
    """The job's accounting, checked against itself, the source files and the target."""

    source_rows: int
    migrated: int
    rejected: int
    merged: int
    unaccounted: int
    entity_mismatches: list[str]

    @property
    def exact(self) -> bool:
        return (
            self.unaccounted == 0
            and self.source_rows == self.migrated + self.rejected + self.merged
            and not self.entity_mismatches
        )


def check_accounting(job_report: dict[str, Any], files: dict[str, int], target: str) -> Accounting:
    """Per entity: source = migrated + rejected + merged; source = the rows in its CSV file; migrated =
    the rows in its target table (the target was empty before the job)."""
    rows = target_row_counts(target)
    plan_files = _entity_files()
    mismatches = []
    for e in job_report["entities"]:
        if e["source"] != e["migrated"] + e["rejected"] + e["merged"]:
            mismatches.append(f"{e['entity']}: source {e['source']} != {e['migrated']}+{e['rejected']}+{e['merged']}")
        expected_source = files.get(plan_files.get(e["entity"], ""), -1)
        if e["source"] != expected_source:
            mismatches.append(f"{e['entity']}: source {e['source']}, its CSV file has {expected_source} rows")
        if rows.get(e["target_table"], -1) != e["migrated"]:
            mismatches.append(f"{e['entity']}: migrated {e['migrated']}, target has {rows.get(e['target_table'])}")
    return Accounting(
        source_rows=job_report["rows_total"],
        migrated=job_report["rows_migrated"],
        rejected=job_report["rows_rejected"],
        merged=job_report.get("rows_merged", sum(e["merged"] for e in job_report["entities"])),
        unaccounted=job_report["unaccounted"],
        entity_mismatches=mismatches,
    )


def _entity_files() -> dict[str, str]:
    plan = yaml.safe_load(SHIPPED[PLAN].plan_file.read_text(encoding="utf-8"))
    return {e["name"]: e.get("source", {}).get("file", "") for e in plan["entities"]}


def _fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def slow_inserts(dsn: str, seconds: float) -> None:
    """Every INSERT statement into the target's tables dwells `seconds` (a statement trigger; the data is
    untouched), so a migration's load phase lasts long enough for a fault to land inside it however fast
    the engine prepares."""
    tables = [r["t"] for r in _fetch(dsn, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'")]
    statements = [
        "CREATE FUNCTION dwell() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END $$"
    ]
    statements += [
        f'CREATE TRIGGER dwell AFTER INSERT ON public."{t}" FOR EACH STATEMENT EXECUTE FUNCTION dwell()' for t in tables
    ]

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("; ".join(statements))
        finally:
            await conn.close()

    asyncio.run(run())


def target_row_counts(dsn: str) -> dict[str, int]:
    tables = [r["t"] for r in _fetch(dsn, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'")]
    counts = {}
    for table in tables:
        counts[table] = int(_fetch(dsn, f'SELECT count(*) AS n FROM public."{table}"')[0]["n"])
    return counts


def target_checksum(dsn: str) -> dict[str, tuple[int, str]]:
    """Per public table of the target: (rows, md5 of the content) independent of surrogate ids."""
    columns = _fetch(
        dsn,
        "SELECT c.table_name AS t, c.column_name AS c, c.ordinal_position AS pos FROM information_schema.columns c "
        "JOIN pg_tables p ON p.tablename = c.table_name AND p.schemaname = c.table_schema "
        "WHERE c.table_schema = 'public' ORDER BY 1, 3",
    )
    foreign = {
        (r["t"], r["c"]): r["ref"]
        for r in _fetch(
            dsn,
            "SELECT cl.relname AS t, a.attname AS c, rf.relname AS ref FROM pg_constraint k "
            "JOIN pg_class cl ON cl.oid = k.conrelid JOIN pg_class rf ON rf.oid = k.confrelid "
            "JOIN pg_namespace n ON n.oid = cl.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] "
            "WHERE k.contype = 'f' AND n.nspname = 'public'",
        )
    }
    by_table: dict[str, list[str]] = {}
    for r in columns:
        by_table.setdefault(r["t"], []).append(r["c"])
    result = {}
    for table, cols in sorted(by_table.items()):
        selected, joins = [], []
        for i, col in enumerate(cols):
            if col == "id":
                continue  # the surrogate key: new ids depend on commit order
            ref = foreign.get((table, col))
            if ref:
                joins.append(f'LEFT JOIN public."{ref}" r{i} ON r{i}.id = t."{col}"')
                selected.append(f"r{i}.legacy_key")
            else:
                selected.append(f't."{col}"')
        content = f"row({', '.join(selected)})::text"
        row = _fetch(
            dsn,
            f"SELECT count(*) AS n, md5(coalesce(string_agg({content}, '|' ORDER BY {content}), '')) AS h "
            f'FROM public."{table}" t {" ".join(joins)}',
        )[0]
        result[table] = (int(row["n"]), str(row["h"]))
    return result
