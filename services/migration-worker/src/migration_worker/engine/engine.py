"""The migration engine: dry run, run / resume, verify and roll back, all set-based inside PostgreSQL.

Pipeline per entity (in plan order): stage the source with COPY -> prepare (transform + validate in SQL,
in parallel chunks) -> set-wide rules (duplicates, unique) -> load in key-ranged batches, each batch
committing its rows, its rejects and its checkpoint in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import polars as pl

from migration_worker.adapters import target_db
from migration_worker.adapters.sources import CsvFolderSource, Source
from migration_worker.adapters.target_db import ADMIN, TableInfo
from migration_worker.domain.accounting import EntityAccount, verdict
from migration_worker.domain.plan import Entity, Plan
from migration_worker.domain.sqlgen import EntitySql, q
from migration_worker.engine import vector_prepare
from migration_worker.engine.progress import ProgressMeter, ProgressSink
from migration_worker.engine.staging import Staging, create_raw

log = logging.getLogger("migration_worker.engine")

SPOT_CHECK_ROWS = 100
HEARTBEAT_SECONDS = 10.0  # well inside the 60 s after which the job loop treats a running job as abandoned
BUSY: dict[str, int] = {"busy": 1}  # sentinel: another replica holds the batch


def job_key(job_id: str) -> str:
    return uuid.UUID(job_id).hex[:16]


@dataclass
class EngineOptions:
    concurrency: int = 2
    batch_size: int | None = None  # None: the plan's batch size
    worker: str = field(default_factory=socket.gethostname)
    backup_retention_hours: float = 48.0
    # Prepare CSV entities with Polars where it computes exactly what the SQL would (vector_prepare).
    vectorised: bool = True


class BatchDispatch(Protocol):
    """How a prepared entity's batches get loaded when not in this process: for instance as batch
    messages that every worker replica consumes. Returns once every batch of the entity is committed."""

    async def load_entity(
        self, engine: MigrationEngine, pool: asyncpg.Pool, job_id: str, entity: Entity, sql: EntitySql
    ) -> None: ...


@dataclass(frozen=True)
class Ledger:
    """What the checkpoint table says about one entity of a job."""

    batch_count: int
    committed: int
    rows_done: int
    source_rows: int

    @property
    def complete(self) -> bool:
        return self.committed >= self.batch_count


class MigrationEngine:
    def __init__(
        self,
        plan: Plan,
        source: Source,
        target_dsn: str,
        options: EngineOptions | None = None,
        progress: list[ProgressSink] | None = None,
        dispatch: BatchDispatch | None = None,
    ) -> None:
        self.plan = plan
        self.source = source
        self.target_dsn = target_dsn
        self.options = options or EngineOptions()
        self.meter = ProgressMeter(progress or [])
        self.dispatch = dispatch

    @property
    def batch_size(self) -> int:
        return self.options.batch_size or self.plan.options.batch_size

    async def _pool(self) -> asyncpg.Pool:
        await (await target_db.connect(self.target_dsn)).close()  # clear error if unreachable
        pool = await asyncpg.create_pool(self.target_dsn, min_size=1, max_size=max(2, self.options.concurrency + 1))
        assert pool is not None
        return pool

    # ------------------------------------------------------------------------------------------------
    # dry run
    # ------------------------------------------------------------------------------------------------

    async def dry_run(self) -> dict[str, Any]:
        """Stage, transform and validate everything in temporary tables; report; write nothing."""
        heartbeat = self._start_heartbeat()
        try:
            return await self._dry_run()
        finally:
            await _stop(heartbeat)

    async def _dry_run(self) -> dict[str, Any]:
        started = time.monotonic()
        conn = await target_db.connect(self.target_dsn)
        try:
            # Temporary tables live in backend-local buffers; the default 8 MB would spill constantly.
            await conn.execute("SET temp_buffers = '256MB'")
            tables = await target_db.check_target(conn, self.plan)
            staging = Staging(self.plan, "dry", dry_run=True)
            entities: list[dict[str, Any]] = []
            staged: set[str] = set()  # shared source files already staged in this session
            for entity in self.plan.entities:
                entities.append(await self._dry_run_entity(conn, staging, entity, tables, staged))
            load_rate = await self._sample_load_rate(conn, staging, tables)
            disk = await conn.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relpersistence = 't' AND c.relname LIKE 'sdry_%'"
            )
            backup = await conn.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))), 0) FROM unnest($1::text[]) t",
                [f"{q(self.plan.target.schema_name)}.{q(t)}" for t in self.plan.target_tables],
            )
        finally:
            await conn.close()  # temporary tables vanish with the session
        elapsed = time.monotonic() - started
        rows = sum(e["source_rows"] for e in entities)
        errored = sum(e["rejected"] for e in entities)
        warned = sum(e["warned"] for e in entities)
        load_seconds = rows / load_rate if load_rate else 0.0
        return {
            "plan": self.plan.name,
            "verdict": verdict(rows, errored, warned, self.plan.options.go_threshold_pct),
            "threshold_pct": self.plan.options.go_threshold_pct,
            "rows_total": rows,
            "rows_to_create": sum(e["to_create"] for e in entities),
            "errors": errored,
            "warnings": warned,
            "entities": entities,
            "dry_run_seconds": round(elapsed, 2),
            "estimated_seconds": round(elapsed + load_seconds / max(1, self.options.concurrency), 1),
            "disk_bytes_needed": int(float(disk) * 1.2 + float(backup)),
            # the worker's peak: one Polars block and its prepared rows (337-371 MiB measured at 1M-5M rows)
            "memory_bytes_needed": 512 * 2**20 if self.options.vectorised else 256 * 2**20,
        }

    async def _dry_run_entity(
        self,
        conn: asyncpg.Connection,
        staging: Staging,
        entity: Entity,
        tables: dict[str, TableInfo],
        staged: set[str],
    ) -> dict[str, Any]:
        sql = staging.entity_sql(entity, self.source, tables)
        await self.meter.emit("dry_run", entity.name, 0, 0)
        if entity.source.sql or entity.source.stage_name not in staged:
            await create_raw(conn, staging, entity, self.source)
            staged.add(entity.source.stage_name)
        max_row = await conn.fetchval(f"SELECT coalesce(max(_row_no), 0) FROM {sql.raw}")
        await conn.execute(f"DROP TABLE IF EXISTS {sql.clean}")
        await conn.execute(sql.clean_ddl(temporary=True))
        # Prepared as the run will prepare it, so the dry run's timing predicts the run's.
        if not (
            self._vectorisable(sql)
            and await self._complete_vectorised(conn, sql, await self._vectorise(conn, sql), max_row)
        ):
            await conn.execute(f"TRUNCATE {sql.clean}")  # whatever a disagreeing Polars reading left
            await conn.execute(sql.prepare_sql(), 0, max_row)
        await _set_wide_rules(conn, sql)
        stats = await conn.fetchrow(
            f"SELECT count(*) AS source_rows, count(*) FILTER (WHERE _status = 'v') AS valid, "
            f"count(*) FILTER (WHERE _status = 'r') AS rejected, count(*) FILTER (WHERE _status = 'm') AS merged, "
            f"count(*) FILTER (WHERE _status = 'v' AND cardinality(_warnings) > 0) AS warned FROM {sql.clean}"
        )
        existing = await conn.fetchval(
            f"SELECT count(*) FROM {sql.clean} c JOIN {sql.target} t ON t.{q(sql.legacy_column)} = c._legacy_key "
            f"WHERE c._status = 'v'"
        )
        rules: dict[str, dict[str, Any]] = {}
        for severity, column in (("error", "_errors"), ("warning", "_warnings")):
            for row in await conn.fetch(
                f"SELECT reason, count(*) AS n, (array_agg(_row_no ORDER BY _row_no))[1:$1] AS examples "
                f"FROM (SELECT _row_no, unnest({column}) AS reason FROM {sql.clean}) u GROUP BY reason ORDER BY reason",
                self.plan.options.example_rows,
            ):
                originals = await conn.fetch(
                    f"SELECT _row_no, to_jsonb(r) - '_row_no' AS original FROM {sql.raw} r "
                    f"WHERE _row_no = ANY($1::bigint[]) ORDER BY _row_no",
                    row["examples"],
                )
                rules[row["reason"]] = {
                    "severity": severity,
                    "rows": row["n"],
                    "examples": [{"row": o["_row_no"], "data": _json(o["original"])} for o in originals],
                }
        return {
            "entity": entity.name,
            "target_table": entity.target_table,
            "source_rows": stats["source_rows"],
            "to_create": stats["valid"] - existing,
            "to_update": existing,
            "rejected": stats["rejected"],
            "merged": stats["merged"],
            "warned": stats["warned"],
            "rules": rules,
            "referential_findings": {k: v["rows"] for k, v in rules.items() if k.startswith("reference:")},
            "unique_findings": {k: v["rows"] for k, v in rules.items() if k.startswith(("unique:", "duplicate:"))},
        }

    async def _sample_load_rate(
        self, conn: asyncpg.Connection, staging: Staging, tables: dict[str, TableInfo]
    ) -> float:
        """Measure insert speed on one batch of the first entity. The batch goes into a temporary copy of
        the target table (same columns, defaults, constraints, indexes), inside a rolled-back transaction,
        so not even the target's identity sequence moves."""
        for entity in self.plan.entities:
            if entity.fields and not any(s.reference for s in entity.fields.values()):
                sql = staging.entity_sql(entity, self.source, tables)
                sample = dataclasses.replace(sql, target=f"pg_temp.{q('sample_' + entity.name)}")
                tx = conn.transaction()
                await tx.start()
                try:
                    await conn.execute(f"CREATE TEMPORARY TABLE {sample.target} (LIKE {sql.target} INCLUDING ALL)")
                    started = time.monotonic()
                    status = await conn.execute(sample.upsert_sql(), 0, self.batch_size)
                    rows = int(status.split()[-1])
                    elapsed = time.monotonic() - started
                except asyncpg.PostgresError as exc:
                    # The run rejects such rows one by one at insert; the set-wise sample cannot time that.
                    log.warning(
                        "the target refused the sample batch of %s (%s); trying the next entity", entity.name, exc
                    )
                    continue
                finally:
                    await tx.rollback()
                return rows / elapsed if rows and elapsed > 0 else 0.0
        return 0.0

    # ------------------------------------------------------------------------------------------------
    # run / resume
    # ------------------------------------------------------------------------------------------------

    async def run(self, job_id: str, *, offline: bool = False) -> list[EntityAccount]:
        """Run or resume a job: whatever is already committed is skipped, the rest is loaded."""
        pool = await self._pool()
        heartbeat = self._start_heartbeat()
        try:
            async with pool.acquire() as conn:
                tables = await target_db.check_target(conn, self.plan)
                await target_db.ensure_admin_schema(conn)
                if offline:
                    async with target_db.offline_mode(conn):
                        await self._run(pool, conn, job_id, tables)
                else:
                    await self._run(pool, conn, job_id, tables)
            return await self.verify(job_id, pool=pool)
        finally:
            await _stop(heartbeat)
            await pool.close()

    def _start_heartbeat(self) -> asyncio.Task[None]:
        """The job row is refreshed while the engine works, so no other replica takes the job for abandoned."""
        return asyncio.create_task(self._heartbeat(), name="migration-heartbeat")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.meter.beat()
            except Exception:  # a missed beat is harmless; the run must not fail for it
                log.warning("progress heartbeat failed", exc_info=True)

    async def _run(
        self, pool: asyncpg.Pool, conn: asyncpg.Connection, job_id: str, tables: dict[str, TableInfo]
    ) -> None:
        await self.meter.emit("backup", None, 0, len(self.plan.target_tables))
        await target_db.backup_tables(conn, job_id, self.plan)
        staging = Staging(self.plan, job_key(job_id), dry_run=False)
        sqls = self.entity_sqls(job_id, tables)
        for entity in self.plan.entities:
            sql = sqls[entity.name]
            await self.prepare_entity(pool, conn, job_id, staging, entity, sql, sqls)
            if self.dispatch is not None:
                await self.dispatch.load_entity(self, pool, job_id, entity, sql)
            else:
                await self.load_entity(pool, job_id, entity, sql)

    def entity_sqls(self, job_id: str, tables: dict[str, TableInfo]) -> dict[str, EntitySql]:
        """The SQL of every entity of a job, as a replica loading one of its batches needs it."""
        staging = Staging(self.plan, job_key(job_id), dry_run=False)
        return {e.name: staging.entity_sql(e, self.source, tables) for e in self.plan.entities}

    async def prepare_entity(
        self,
        pool: asyncpg.Pool,
        conn: asyncpg.Connection,
        job_id: str,
        staging: Staging,
        entity: Entity,
        sql: EntitySql,
        sqls: dict[str, EntitySql],
        *,
        loaded_too: bool = False,
    ) -> None:
        """Stage and prepare once per job; redo both only if a crash wiped the unlogged staging tables.
        A session-level lock makes replicas that arrive together wait for the first one's result.
        `loaded_too` rebuilds the prepared rows of an entity already loaded, for an entity derived from them."""
        key = f"prepare:{job_id}:{entity.name}"
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", key)
        try:
            await self._prepare_locked(pool, conn, job_id, staging, sql, sqls, loaded_too)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)

    async def _prepare_locked(
        self,
        pool: asyncpg.Pool,
        conn: asyncpg.Connection,
        job_id: str,
        staging: Staging,
        sql: EntitySql,
        sqls: dict[str, EntitySql],
        loaded_too: bool,
    ) -> None:
        entity = sql.entity
        state = await conn.fetchrow(
            f"SELECT source_rows, max_row_no, prepared_at, loaded_at FROM {ADMIN}.entity_runs "
            f"WHERE job_id = $1 AND entity = $2",
            job_id,
            entity.name,
        )
        if state and state["loaded_at"] and not loaded_too:
            return
        if state and state["prepared_at"] and await _intact(conn, sql, state["source_rows"]):
            return
        for parent in entity.source.derived_from:
            # Derived from the parent's prepared rows, which a crash wipes even when the parent is loaded.
            parent_sql = sqls[parent]
            await self.prepare_entity(pool, conn, job_id, staging, parent_sql.entity, parent_sql, sqls, loaded_too=True)
        started = time.monotonic()
        # Sorting and hashing a million keys (set-wide rules, indexes) in memory, not in temp files.
        await conn.execute("SET work_mem = '64MB'")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await self.meter.emit("stage", entity.name, 0, 0)
        if self._vectorisable(sql):
            # a vectorised entity has no `where`: every staged row is a source row
            source_rows = max_row = await self._stage_and_vectorise(pool, conn, job_id, staging, sql)
        else:
            max_row = await self._stage(conn, job_id, staging, sql)
            source_rows = await self._prepare_sql(pool, conn, sql, max_row)

        async def duplicates() -> None:
            async with pool.acquire() as other:
                await other.execute("SET work_mem = '64MB'")
                if not await _keys_distinct(other, sql):
                    await other.execute(sql.duplicate_key_sql())

        # Only the columns the load and the set-wide rules filter, group or join on need statistics.
        # ANALYZE and the duplicate search run side by side, one core each. (Splitting the duplicate
        # search by key hash over both cores measured slower: each part still reads every row.)
        await asyncio.gather(
            conn.execute(f"ANALYZE {sql.clean} ({', '.join(q(c) for c in sql.analyzed_columns)})"), duplicates()
        )
        for statement in sql.unique_rule_sql():
            await conn.execute(statement)
        # Rows the target refused in batches committed before a crash are rejected again, as the ledger says.
        await conn.execute(
            f"UPDATE {sql.clean} c SET _status = 'r', _errors = r.reasons FROM {ADMIN}.rejects r "
            f"WHERE r.job_id = $1 AND r.entity = $2 AND r.stage = 'insert' AND c._row_no = r.row_no",
            job_id,
            entity.name,
        )
        await conn.execute(
            f"INSERT INTO {ADMIN}.entity_runs (job_id, entity, source_rows, max_row_no, batch_count, batch_size, "
            f"prepared_at, prepare_seconds) VALUES ($1, $2, $3, $4, $5, $7, now(), $6) "
            f"ON CONFLICT (job_id, entity) DO UPDATE SET "
            f"source_rows = EXCLUDED.source_rows, max_row_no = EXCLUDED.max_row_no, "
            f"batch_count = {ADMIN}.entity_runs.batch_count, prepared_at = now(), "
            f"prepare_seconds = {ADMIN}.entity_runs.prepare_seconds + EXCLUDED.prepare_seconds",
            job_id,
            entity.name,
            source_rows,
            max_row,
            math.ceil(max_row / self.batch_size),
            time.monotonic() - started,
            self.batch_size,
        )

    def _vectorisable(self, sql: EntitySql) -> bool:
        why_sql = vector_prepare.unsupported(sql, self.source) if self.options.vectorised else "vectorising is off"
        if why_sql is not None:
            log.info("%s prepared by SQL: %s", sql.entity.name, why_sql)
        return why_sql is None

    async def _stage(self, conn: asyncpg.Connection, job_id: str, staging: Staging, sql: EntitySql) -> int:
        """Stage the entity's source unless an intact copy is there; returns the row count (= highest
        row number)."""
        entity = sql.entity
        stage_name = staging.raw_name(entity)
        staged = await conn.fetchrow(
            f"SELECT rows FROM {ADMIN}.stages WHERE job_id = $1 AND name = $2", job_id, stage_name
        )
        if not entity.source.sql and staged and await _intact(conn, sql, staged["rows"], raw=True):
            return int(staged["rows"])
        async with conn.transaction():
            rows = await create_raw(conn, staging, entity, self.source)
            await conn.execute(
                f"INSERT INTO {ADMIN}.stages (job_id, name, rows) VALUES ($1, $2, $3) "
                f"ON CONFLICT (job_id, name) DO UPDATE SET rows = EXCLUDED.rows, staged_at = now()",
                job_id,
                stage_name,
                rows,
            )
        return rows

    async def _prepare_sql(self, pool: asyncpg.Pool, conn: asyncpg.Connection, sql: EntitySql, max_row: int) -> int:
        """Transform and validate the staged rows with the generated SQL, in parallel chunks."""
        workers = max(1, min(self.options.concurrency, max_row // 10_000 or 1))
        # A few chunks per connection, taken from a queue: the connections finish together instead of one
        # core idling while the other works through a larger share.
        count = workers * 4 if max_row >= workers * 4 * 10_000 else workers
        chunks = [(max_row * i // count, max_row * (i + 1) // count) for i in range(count)] if max_row else []
        await conn.execute(f"DROP TABLE IF EXISTS {sql.clean}")
        for statement in sql.clean_partitioned_ddl(chunks):
            await conn.execute(statement)
        # Built while the chunks insert (in _row_no order, so into the rightmost leaves, on both cores)
        # rather than afterwards by one backend on one core.
        await conn.execute(f"CREATE INDEX ON {sql.clean} (_row_no)")
        await self.meter.emit("prepare", sql.entity.name, 0, max_row)
        # The raw btree is built here, beside the preparing chunks (both only read the raw table), instead
        # of on the critical path.
        source_rows, _ = await asyncio.gather(
            self._prepare_parallel(pool, sql, workers, chunks), conn.execute(sql.raw_index_ddl)
        )
        return source_rows

    async def _stage_and_vectorise(
        self,
        pool: asyncpg.Pool,
        conn: asyncpg.Connection,
        job_id: str,
        staging: Staging,
        sql: EntitySql,
    ) -> int:
        """Stage the raw rows and COPY the Polars-prepared rows side by side (both read the file), then
        prepare with SQL the few rows Polars leaves out; returns the rows staged and prepared. Should the
        two readings of the file disagree on its rows, the SQL prepares everything instead."""
        await conn.execute(f"DROP TABLE IF EXISTS {sql.clean}")
        await conn.execute(sql.clean_ddl(temporary=False))
        await conn.execute(f"CREATE INDEX ON {sql.clean} (_row_no)")

        async def stage() -> int:
            rows = await self._stage(conn, job_id, staging, sql)
            await self.meter.emit("prepare", sql.entity.name, 0, rows)
            await conn.execute(sql.raw_index_ddl)
            return rows

        async def vectorise() -> vector_prepare.VectorResult | None:
            async with pool.acquire() as other:
                return await self._vectorise(other, sql)

        vectorising = asyncio.ensure_future(vectorise())
        try:
            max_row = await stage()
        except BaseException:
            vectorising.cancel()  # staging failed: its error is the job's, not a COPY still running beside it
            await asyncio.gather(vectorising, return_exceptions=True)
            raise
        if not await self._complete_vectorised(conn, sql, await vectorising, max_row):
            await self._prepare_sql(pool, conn, sql, max_row)
        return max_row

    async def _vectorise(self, conn: asyncpg.Connection, sql: EntitySql) -> vector_prepare.VectorResult | None:
        """Polars' prepared rows COPYed into the prepared table on `conn`; None if that failed."""
        source = self.source
        assert isinstance(source, CsvFolderSource)
        assert sql.entity.source.file is not None
        try:
            return await vector_prepare.copy_prepared(conn, sql, source, await source.columns(sql.entity.source.file))
        except (pl.exceptions.PolarsError, asyncpg.PostgresError) as exc:
            # A file COPY staged but Polars cannot read, or a value it made that PostgreSQL refuses: the SQL,
            # which is the definition, prepares the entity instead.
            log.warning("%s: Polars prepare failed (%s); preparing it by SQL", sql.entity.name, exc)
            return None

    @staticmethod
    async def _complete_vectorised(
        conn: asyncpg.Connection, sql: EntitySql, result: vector_prepare.VectorResult | None, staged_rows: int
    ) -> bool:
        """Prepare by SQL the rows Polars left out. False when Polars failed or read the file into another
        number of rows than COPY did: then the SQL must prepare the whole entity."""
        if result is None:
            return False
        if result.rows != staged_rows:
            log.warning(
                "%s: the file parsed into %d rows for Polars but %d for COPY; preparing it by SQL",
                sql.entity.name,
                result.rows,
                staged_rows,
            )
            return False
        if result.exotic:
            await conn.execute(sql.prepare_sql(rows=True), 0, staged_rows, result.exotic)
        return True

    async def _prepare_parallel(
        self, pool: asyncpg.Pool, sql: EntitySql, workers: int, chunks: list[tuple[int, int]]
    ) -> int:
        """Prepare the raw rows chunk by chunk (each into its own partition) on `workers` connections;
        returns how many rows were prepared (the entity's source rows: a `where` on the source leaves
        some raw rows out)."""
        pending = list(enumerate(chunks))

        async def worker() -> int:
            prepared = 0
            async with pool.acquire() as conn:
                while pending:
                    i, (lo, hi) = pending.pop(0)
                    prepared += int((await conn.execute(sql.prepare_sql(into=sql.clean_part(i)), lo, hi)).split()[-1])
            return prepared

        return sum(await asyncio.gather(*(worker() for _ in range(workers))))

    async def batches_to_do(self, conn: asyncpg.Connection, job_id: str, entity: Entity) -> list[tuple[int, int, int]]:
        # The batch ranges are fixed when the entity is first prepared: a resume with another batch
        # size setting must still see the committed checkpoints as they were cut.
        max_row, size = await conn.fetchrow(
            f"SELECT max_row_no, batch_size FROM {ADMIN}.entity_runs WHERE job_id = $1 AND entity = $2",
            job_id,
            entity.name,
        )
        done = {
            r[0]
            for r in await conn.fetch(
                f"SELECT batch_no FROM {ADMIN}.batches WHERE job_id = $1 AND entity = $2", job_id, entity.name
            )
        }
        return [
            (n, n * size, min((n + 1) * size, max_row))
            for n in range(math.ceil((max_row or 0) / size))
            if n not in done
        ]

    async def load_entity(self, pool: asyncpg.Pool, job_id: str, entity: Entity, sql: EntitySql) -> None:
        async with pool.acquire() as conn:
            todo = await self.batches_to_do(conn, job_id, entity)
            total, done = await conn.fetchrow(
                f"SELECT e.source_rows, coalesce((SELECT sum(migrated + rejected + merged) FROM {ADMIN}.batches b "
                f"WHERE b.job_id = e.job_id AND b.entity = e.entity), 0) FROM {ADMIN}.entity_runs e "
                f"WHERE e.job_id = $1 AND e.entity = $2",
                job_id,
                entity.name,
            )
        pending = list(todo)
        counter = {"done": int(done or 0)}
        self.meter.restart()
        await self.meter.emit("load", entity.name, counter["done"], int(total or 0))

        async def worker() -> None:
            async with pool.acquire() as conn:
                while pending:
                    batch_no, lo, hi = pending.pop(0)
                    counts = await self.load_batch(conn, job_id, entity, sql, batch_no, lo, hi)
                    if counts is BUSY:
                        # another replica holds it; if that replica dies its lock goes and we take it
                        pending.append((batch_no, lo, hi))
                        await asyncio.sleep(0.2)
                    elif counts:
                        counter["done"] += sum(counts[k] for k in ("migrated", "rejected", "merged"))
                        await self.meter.emit("load", entity.name, counter["done"], int(total or 0))

        await asyncio.gather(*(worker() for _ in range(max(1, self.options.concurrency))))
        async with pool.acquire() as conn:
            await self.mark_loaded(conn, job_id, entity)

    async def mark_loaded(self, conn: asyncpg.Connection, job_id: str, entity: Entity) -> None:
        await conn.execute(
            f"UPDATE {ADMIN}.entity_runs SET loaded_at = now() WHERE job_id = $1 AND entity = $2 "
            f"AND (SELECT count(*) FROM {ADMIN}.batches b WHERE b.job_id = $1 AND b.entity = $2) = batch_count",
            job_id,
            entity.name,
        )

    @staticmethod
    async def ledger(conn: asyncpg.Connection, job_id: str, entity: Entity) -> Ledger:
        row = await conn.fetchrow(
            f"SELECT e.batch_count, e.source_rows, count(b.batch_no) AS committed, "
            f"coalesce(sum(b.migrated + b.rejected + b.merged), 0) AS rows_done FROM {ADMIN}.entity_runs e "
            f"LEFT JOIN {ADMIN}.batches b ON b.job_id = e.job_id AND b.entity = e.entity "
            f"WHERE e.job_id = $1 AND e.entity = $2 GROUP BY e.batch_count, e.source_rows",
            job_id,
            entity.name,
        )
        if row is None:
            return Ledger(0, 0, 0, 0)
        return Ledger(
            int(row["batch_count"] or 0), int(row["committed"]), int(row["rows_done"]), int(row["source_rows"] or 0)
        )

    async def load_batch(
        self,
        conn: asyncpg.Connection,
        job_id: str,
        entity: Entity,
        sql: EntitySql,
        batch_no: int,
        lo: int,
        hi: int,
        *,
        wait_seconds: float | None = None,
    ) -> dict[str, int] | None:
        """One transaction: the batch's rows, its rejects and its checkpoint. Returns None if already
        committed (by anyone), BUSY while another replica is loading it. With `wait_seconds` it waits that
        long for the other replica instead (a dead replica's lock goes with its aborted transaction) and
        raises asyncpg's LockNotAvailableError when it is still held."""
        lock = f"{job_id}:{entity.name}:{batch_no}"
        async with conn.transaction():
            # Safe for the crash guarantee: a commit lost with the server loses its checkpoint with it, and
            # the batch is simply loaded again.
            await conn.execute("SET LOCAL synchronous_commit = off")
            if wait_seconds is not None:
                await conn.execute(f"SET LOCAL lock_timeout = '{int(wait_seconds * 1000)}ms'")
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock)
                await conn.execute("SET LOCAL lock_timeout = 0")
            elif not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", lock):
                return BUSY
            if await conn.fetchval(
                f"SELECT 1 FROM {ADMIN}.batches WHERE job_id = $1 AND entity = $2 AND batch_no = $3",
                job_id,
                entity.name,
                batch_no,
            ):
                return None
            if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {sql.clean})"):
                # A batch exists only for prepared rows: a database crash emptied the unlogged table. Loading
                # nothing would checkpoint the batch as done; failing sends it back until they are rebuilt.
                raise StagingLost(f"the prepared rows of {entity.name} are gone; they are rebuilt on resume")
            await self._upsert_isolating(conn, sql, lo, hi)
            counts = dict(await conn.fetchrow(sql.reject_log_sql(f"{ADMIN}.rejects"), lo, hi, job_id, entity.name))
            await conn.execute(
                f"INSERT INTO {ADMIN}.batches (job_id, entity, batch_no, lo, hi, migrated, rejected, merged, warned, "
                f"worker) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                job_id,
                entity.name,
                batch_no,
                lo,
                hi,
                counts["migrated"],
                counts["rejected"],
                counts["merged"],
                counts["warned"],
                self.options.worker,
            )
        return counts

    async def _upsert_isolating(
        self, conn: asyncpg.Connection, sql: EntitySql, lo: int, hi: int, *, first: bool = True
    ) -> None:
        """A bad row never fails its batch: on a constraint error, bisect under savepoints until each bad
        row is alone, then reject it with the database's reason and load everything else."""
        if first:
            # Usually none of the batch's rows is in the target yet: a plain INSERT is much cheaper than the
            # upsert. If any is (a repeated job) or a row is bad, it fails early and the upsert path runs.
            with contextlib.suppress(asyncpg.PostgresError):
                async with conn.transaction():
                    await conn.execute(sql.insert_sql(), lo, hi)
                return
        try:
            async with conn.transaction():
                await conn.execute(sql.upsert_sql(), lo, hi)
            return
        except asyncpg.PostgresError as exc:
            rows = [
                r[0]
                for r in await conn.fetch(
                    f"SELECT _row_no FROM {sql.clean} WHERE _row_no > $1 AND _row_no <= $2 AND _status = 'v' "
                    f"ORDER BY _row_no",
                    lo,
                    hi,
                )
            ]
            if len(rows) == 1:
                reason = f"insert:{exc.sqlstate}:{str(exc).splitlines()[0][:200]}"
                await conn.execute(
                    f"UPDATE {sql.clean} SET _status = 'r', _errors = ARRAY[$2]::text[] || _errors WHERE _row_no = $1",
                    rows[0],
                    reason,
                )
                return
            if not rows:
                raise
        mid = rows[len(rows) // 2 - 1]
        await self._upsert_isolating(conn, sql, lo, mid, first=False)
        await self._upsert_isolating(conn, sql, mid, hi, first=False)

    # ------------------------------------------------------------------------------------------------
    # verify
    # ------------------------------------------------------------------------------------------------

    async def verify(self, job_id: str, pool: asyncpg.Pool | None = None) -> list[EntityAccount]:
        own = pool is None
        pool = pool or await self._pool()
        try:
            async with pool.acquire() as conn:
                tables = await target_db.check_target(conn, self.plan)
                staging = Staging(self.plan, job_key(job_id), dry_run=False)
                accounts = []
                for entity in self.plan.entities:
                    await self.meter.emit("verify", entity.name, 0, 0)
                    sql = staging.entity_sql(entity, self.source, tables)
                    accounts.append(await self._verify_entity(conn, job_id, entity, sql))
                return accounts
        finally:
            if own:
                await pool.close()

    async def _verify_entity(
        self, conn: asyncpg.Connection, job_id: str, entity: Entity, sql: EntitySql
    ) -> EntityAccount:
        account = EntityAccount(entity=entity.name, target_table=entity.target_table)
        state = await conn.fetchrow(
            f"SELECT source_rows, prepare_seconds, (SELECT extract(epoch FROM max(committed_at) - min(committed_at)) "
            f"FROM {ADMIN}.batches b WHERE b.job_id = e.job_id AND b.entity = e.entity) AS load_seconds "
            f"FROM {ADMIN}.entity_runs e WHERE job_id = $1 AND entity = $2",
            job_id,
            entity.name,
        )
        if state is None:
            raise target_db.TargetError(f"job {job_id} has not prepared entity {entity.name}")
        account.source = state["source_rows"]
        account.seconds = float(state["prepare_seconds"] or 0) + float(state["load_seconds"] or 0)
        sums = await conn.fetchrow(
            f"SELECT coalesce(sum(migrated), 0) AS m, coalesce(sum(rejected), 0) AS r, coalesce(sum(merged), 0) AS d, "
            f"coalesce(sum(warned), 0) AS w FROM {ADMIN}.batches WHERE job_id = $1 AND entity = $2",
            job_id,
            entity.name,
        )
        account.migrated, account.rejected, account.merged, account.warned = (int(sums[k]) for k in "mrdw")
        for row in await conn.fetch(
            f"SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM {ADMIN}.rejects "
            f"WHERE job_id = $1 AND entity = $2) r GROUP BY reason ORDER BY 2 DESC",
            job_id,
            entity.name,
        ):
            account.reasons[row[0]] = row[1]
        if not await _exists(conn, sql.clean):
            return account  # staging purged: accounting from the ledger only
        legacy = q(sql.legacy_column)
        account.missing_in_target = await conn.fetchval(
            f"SELECT count(*) FROM {sql.clean} c WHERE c._status = 'v' AND NOT EXISTS "
            f"(SELECT 1 FROM {sql.target} t WHERE t.{legacy} = c._legacy_key)"
        )
        # No duplicate legacy keys: guaranteed by the unique index check_target requires on the legacy key
        # (a GROUP BY over the whole target would only re-prove it, at seconds per million rows).
        account.duplicate_keys = 0
        for name, spec in entity.fields.items():
            if spec.reference:
                ref = sql.refs[spec.reference]
                account.orphans += await conn.fetchval(
                    f"SELECT count(*) FROM {sql.target} t WHERE t.{q(name)} IS NOT NULL AND NOT EXISTS "
                    f"(SELECT 1 FROM {ref.table} p WHERE p.{q(ref.id_column)} = t.{q(name)})"
                )
        # ~20x the sample's worth of blocks, so the sample stays random across the table yet cheap.
        pct = 100.0 * SPOT_CHECK_ROWS * 20 / account.source if account.source > SPOT_CHECK_ROWS * 200 else None
        rows = await conn.fetch(sql.spot_check_sql(SPOT_CHECK_ROWS, pct))
        account.spot_checked = len(rows)
        account.spot_mismatches = [
            f"row {r['_row_no']}: " + ("missing" if r["missing"] else ", ".join(r["diffs"]))
            for r in rows
            if r["missing"] or r["diffs"]
        ]
        return account

    # ------------------------------------------------------------------------------------------------
    # rollback and purge
    # ------------------------------------------------------------------------------------------------

    async def rollback(self, job_id: str) -> dict[str, int]:
        conn = await target_db.connect(self.target_dsn)
        try:
            await self.meter.emit("rollback", None, 0, 0)
            return await target_db.restore_backups(conn, job_id, self.plan, self.options.backup_retention_hours)
        finally:
            await conn.close()


async def worker_batches(conn: asyncpg.Connection, job_id: str) -> dict[str, dict[str, int]]:
    """Which worker replica committed how many batches (and rows) of a job, from the checkpoints."""
    if not await _exists(conn, f"{ADMIN}.batches"):
        return {}
    rows = await conn.fetch(
        f"SELECT coalesce(worker, '?') AS worker, count(*) AS batches, sum(migrated + rejected + merged) AS rows "
        f"FROM {ADMIN}.batches WHERE job_id = $1 GROUP BY 1 ORDER BY 1",
        job_id,
    )
    return {r["worker"]: {"batches": int(r["batches"]), "rows": int(r["rows"])} for r in rows}


async def drop_staging(conn: asyncpg.Connection, job_id: str) -> int:
    """Drop a job's staging tables (the source archive in the target database)."""
    names = await conn.fetch(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE $2",
        ADMIN,
        f"s{job_key(job_id)}_%",
    )
    for (name,) in names:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
    return len(names)


async def _keys_distinct(conn: asyncpg.Connection, sql: EntitySql) -> bool:
    """True when no two valid prepared rows share a legacy key, proved by building a unique index on the
    keys (dropped again); False when one does, and the duplicate search has to find them. The SQL prepare's
    partitioned table cannot hold such an index (it would have to include the partition key): False there."""
    if await conn.fetchval("SELECT relkind = 'p' FROM pg_class WHERE oid = $1::regclass", sql.clean):
        return False
    await conn.execute("SET maintenance_work_mem = '256MB'")
    try:
        await conn.execute(sql.key_probe_ddl)
    except asyncpg.UniqueViolationError:
        return False
    await conn.execute(f"DROP INDEX {sql.key_probe_index}")
    return True


async def _set_wide_rules(conn: asyncpg.Connection, sql: EntitySql) -> None:
    await conn.execute(sql.duplicate_key_sql())
    for statement in sql.unique_rule_sql():
        await conn.execute(statement)


async def _exists(conn: asyncpg.Connection, relation: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", relation))


class StagingLost(RuntimeError):
    """The unlogged prepared rows a batch loads from were wiped (database crash)."""


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _intact(conn: asyncpg.Connection, sql: EntitySql, expected_rows: int | None, raw: bool = False) -> bool:
    """Unlogged tables come back empty after a database crash; detect that and rebuild."""
    relation = sql.raw if raw else sql.clean
    if not await _exists(conn, relation):
        return False
    if not expected_rows:
        return True
    return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {relation})"))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
