"""Scale-out through batch messages.

The replica that claimed a job coordinates it: it stages and prepares each entity (in dependency order),
then records the entity's batch ranges and sends one `load_batch` command per batch through the outbox,
in one transaction. Every replica (the coordinator too) consumes those commands from one quorum queue
(competing consumers) and loads the batch: rows, rejects and checkpoint in one target transaction, so a
redelivered batch finds its checkpoint and is only acknowledged. The coordinator waits until the
checkpoint ledger holds every batch of the entity before preparing the next one (references must see all
parent rows), then verifies and reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import asyncpg
from contracts.migrations import LoadBatch

from migration_worker.adapters import target_db
from migration_worker.adapters.jobstore import JobStore
from migration_worker.domain.plan import Entity, parse_plan
from migration_worker.domain.sqlgen import EntitySql
from migration_worker.engine.engine import BUSY, EngineOptions, MigrationEngine
from migration_worker.settings import Settings

if TYPE_CHECKING:
    from migration_worker.service_layer.handlers import MigrationService

log = logging.getLogger("migration_worker.batches")

POLL_SECONDS = 0.2
CACHED_JOBS = 8


class MessageDispatch:
    """The coordinator's side: dispatch an entity's batches as messages and wait for their checkpoints."""

    def __init__(self, jobs: JobStore, settings: Settings) -> None:
        self.jobs = jobs
        self.settings = settings

    async def load_entity(
        self, engine: MigrationEngine, pool: asyncpg.Pool, job_id: str, entity: Entity, sql: EntitySql
    ) -> None:
        async with pool.acquire() as conn:
            todo = await engine.batches_to_do(conn, job_id, entity)
        sent = await self.jobs.dispatch_batches(job_id, entity.name, todo, self.settings.worker_name)
        log.info("job %s entity %s: %d batches to load, %d sent as load_batch", job_id, entity.name, len(todo), sent)
        engine.meter.restart()
        last_rows, last_change = -1, time.monotonic()
        while True:
            async with pool.acquire() as conn:
                ledger = await engine.ledger(conn, job_id, entity)
            # Emitted on every poll: besides progress it is the coordinator's heartbeat on the job row.
            await engine.meter.emit("load", entity.name, ledger.rows_done, ledger.source_rows)
            if ledger.complete:
                break
            now = time.monotonic()
            if ledger.rows_done != last_rows:
                last_rows, last_change = ledger.rows_done, now
            elif now - last_change > self.settings.batch_stall_seconds:
                # Messages parked or lost: the batches are still loaded exactly once (checkpoint + lock).
                log.warning(
                    "job %s entity %s: no batch committed for %.0f s, loading the rest here",
                    job_id,
                    entity.name,
                    now - last_change,
                )
                await engine.load_entity(pool, job_id, entity, sql)
                continue
            await asyncio.sleep(POLL_SECONDS)
        async with pool.acquire() as conn:
            await engine.mark_loaded(conn, job_id, entity)


class BatchWorker:
    """Every replica's side: load one batch from a `load_batch` command."""

    def __init__(self, service: MigrationService) -> None:
        self.service = service
        self.settings = service.settings
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._pools: dict[str, asyncpg.Pool] = {}
        self._jobs: OrderedDict[uuid.UUID, tuple[MigrationEngine, dict[str, EntitySql]]] = OrderedDict()
        self._lock = asyncio.Lock()
        self._closing = False

    async def load(self, command: LoadBatch) -> dict[str, int] | None:
        """Load the batch; None when there is nothing to do (already committed, or the job is no longer
        running: a batch arriving after a rollback must not write)."""
        if self._closing:
            raise RuntimeError("replica shutting down; the batch goes back for another replica")
        job = await self.service.jobs.get(command.job_id)
        if job["status"] != "running":
            log.info("load_batch for job %s ignored: job is %s", command.job_id, job["status"])
            return None
        engine, sqls = await self._context(job)
        sql = sqls.get(command.entity)
        if sql is None:
            raise ValueError(f"job {command.job_id} has no entity {command.entity!r}")
        pool = await self._pool(job["target_dsn"])
        async with self._slots, pool.acquire() as conn:
            counts = await engine.load_batch(
                conn,
                str(command.job_id),
                sql.entity,
                sql,
                command.batch_no,
                command.lo,
                command.hi,
                wait_seconds=self.settings.batch_lock_wait_seconds,
            )
        assert counts is not BUSY
        if counts:
            log.info("job %s %s batch %d loaded: %s", command.job_id, command.entity, command.batch_no, counts)
        return counts

    async def _context(self, job: dict[str, Any]) -> tuple[MigrationEngine, dict[str, EntitySql]]:
        async with self._lock:
            cached = self._jobs.get(job["id"])
            if cached is not None:
                self._jobs.move_to_end(job["id"])
                return cached
            plan = parse_plan(job["plan_text"])
            engine = MigrationEngine(
                plan,
                self.service.source(plan, job["source_location"]),
                job["target_dsn"],
                EngineOptions(concurrency=1, worker=self.settings.worker_name),
            )
            conn = await target_db.connect(job["target_dsn"])
            try:
                tables = await target_db.check_target(conn, plan)
            finally:
                await conn.close()
            self._jobs[job["id"]] = (engine, engine.entity_sqls(str(job["id"]), tables))
            while len(self._jobs) > CACHED_JOBS:
                self._jobs.popitem(last=False)
            return self._jobs[job["id"]]

    async def _pool(self, dsn: str) -> asyncpg.Pool:
        async with self._lock:
            pool = self._pools.get(dsn)
            if pool is None:
                # The replica's name on its sessions lets an operator see in pg_stat_activity who loads what.
                pool = await asyncpg.create_pool(
                    dsn,
                    min_size=1,
                    max_size=self.settings.concurrency,
                    server_settings={"application_name": self.settings.worker_name[:63]},
                )
                assert pool is not None
                self._pools[dsn] = pool
            return pool

    async def close(self) -> None:
        """Let the batches in flight commit, then close the target pools."""
        self._closing = True
        for _ in range(self.settings.concurrency):
            await self._slots.acquire()
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()
