"""Use cases: create, dry-run, run / resume, verify, report, roll back, schedule and purge migration jobs.

Every entrypoint (CLI, broker consumer, HTTP) goes through these, so the rules hold everywhere: a run
needs a passing dry run or a logged reason to force it; every state change publishes its event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts.envelope import Payload
from contracts.migrations import (
    DataSource,
    DryRunCompleted,
    EntitySummary,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobScheduled,
    StartJob,
)
from servicekit.metrics import MIGRATION_ROWS_PER_SECOND
from sqlalchemy.ext.asyncio import AsyncSession

from migration_worker.adapters import target_db
from migration_worker.adapters.jobstore import LIVE, JobStore
from migration_worker.adapters.reports import build_report
from migration_worker.adapters.sources import CsvFolderSource, PostgresSource, Source
from migration_worker.domain.accounting import EntityAccount
from migration_worker.domain.plan import Plan, parse_plan
from migration_worker.engine.engine import BatchDispatch, EngineOptions, MigrationEngine, drop_staging, worker_batches
from migration_worker.engine.progress import Progress, ProgressSink
from migration_worker.plans import SHIPPED
from migration_worker.settings import Settings

log = logging.getLogger("migration_worker.jobs")

PHASES = {"dry_run", "backup", "load", "verify", "report", "rollback"}


class NeedsDryRun(RuntimeError):
    """A run without a passing dry run must be forced with a reason."""


class NotConfirmed(RuntimeError):
    pass


class NotRunYet(RuntimeError):
    """Verify, report and rollback need a job whose run began: before it, the target holds nothing of it."""


@dataclass
class MigrationService:
    settings: Settings
    jobs: JobStore
    sinks: list[ProgressSink]
    dispatch: BatchDispatch | None = None  # None: batches are loaded in this process (the CLI)

    # ---- job creation -------------------------------------------------------------------------------

    async def create_job(
        self,
        plan_text: str,
        source_location: str,
        *,
        target_dsn: str | None = None,
        job_id: uuid.UUID | None = None,
        order_id: uuid.UUID | None = None,
        school_id: uuid.UUID | None = None,
        scheduled_for: datetime | None = None,
        offline_mode: bool = False,
    ) -> uuid.UUID:
        plan = parse_plan(plan_text)  # a bad plan is refused before any job exists
        return await self.jobs.create(
            id=job_id or uuid.uuid4(),
            plan_name=plan.name,
            plan_text=plan_text,
            source_kind=plan.source.kind,
            source_location=source_location,
            target_dsn=target_dsn or self.settings.target_dsn,
            order_id=order_id,
            school_id=school_id,
            scheduled_for=scheduled_for,
            offline_mode=offline_mode,
            status="created",
        )

    def _engine(self, job: dict[str, Any], extra_sinks: list[ProgressSink] | None = None) -> MigrationEngine:
        plan = parse_plan(job["plan_text"])
        return MigrationEngine(
            plan,
            self.source(plan, job["source_location"]),
            job["target_dsn"],
            EngineOptions(
                concurrency=self.settings.concurrency,
                batch_size=self.settings.batch_size,
                worker=self.settings.worker_name,
                backup_retention_hours=self.settings.backup_retention_hours,
                vectorised=self.settings.vectorised_prepare,
            ),
            progress=[*self.sinks, self._progress_sink(job), *(extra_sinks or [])],
            dispatch=self.dispatch,
        )

    def source(self, plan: Plan, location: str) -> Source:
        if plan.source.kind == "postgres":
            return PostgresSource(self.settings.source_dsns.get(location, location))
        folder = Path(location.removeprefix("file://"))
        if not folder.is_absolute():
            folder = Path(self.settings.source_root) / folder
        return CsvFolderSource(folder, delimiter=plan.source.delimiter, encoding=plan.source.encoding)

    def _progress_sink(self, job: dict[str, Any]) -> ProgressSink:
        """Job progress in the job row and as job_progress events, at most every few seconds."""
        last_at: dict[str, float] = {}

        async def sink(p: Progress) -> None:
            now = time.monotonic()
            key = f"{p.phase}:{p.entity}"
            done = p.rows_total > 0 and p.rows_done >= p.rows_total
            if not done and now - last_at.get(key, 0.0) < self.settings.progress_interval_seconds:
                return
            last_at[key] = now
            phase = p.phase if p.phase in PHASES else "load"
            event = JobProgress(
                job_id=job["id"],
                order_id=job["order_id"],
                phase=phase,
                entity=p.entity,
                rows_done=p.rows_done,
                rows_total=max(p.rows_total, p.rows_done),
                rows_per_second=p.rows_per_second,
                eta_seconds=p.eta_seconds,
                percent=p.percent,
                worker=self.settings.worker_name,
                cpu_percent=p.cpu_percent,
                memory_mb=p.memory_mb,
            )
            MIGRATION_ROWS_PER_SECOND.labels(self.settings.worker_name).set(0.0 if done else p.rows_per_second or 0.0)
            await self.jobs.update(job["id"], event, phase=p.phase, progress=p.as_dict())

        return sink

    # ---- dry run ------------------------------------------------------------------------------------

    async def dry_run(self, job_id: uuid.UUID) -> dict[str, Any]:
        job = await self.jobs.get(job_id)
        await self.jobs.update(job_id, status="dry_running", phase="dry_run")
        try:
            result = await self._engine(job).dry_run()
        except asyncio.CancelledError:
            await self._interrupted(job)
            raise
        except Exception as exc:
            await self._fail(job, "dry_run", exc)
            raise
        event = DryRunCompleted(
            job_id=job_id,
            order_id=job["order_id"],
            verdict=result["verdict"],
            rows_total=result["rows_total"],
            warnings=result["warnings"],
            errors=result["errors"],
            estimated_seconds=result["estimated_seconds"],
        )
        status = "dry_run_passed" if result["verdict"] == "go" else "dry_run_failed"
        await self.jobs.update(job_id, event, status=status, dry_run=result)
        log.info("dry run of job %s: %s", job_id, result["verdict"])
        return result

    # ---- run / resume -------------------------------------------------------------------------------

    async def run(
        self,
        job_id: uuid.UUID,
        *,
        confirm: bool,
        force_reason: str | None = None,
        offline: bool = False,
        extra_sinks: list[ProgressSink] | None = None,
    ) -> dict[str, Any]:
        _require_confirm(confirm)
        job = await self.jobs.get(job_id)
        dry = job["dry_run"] or {}
        if dry.get("verdict") != "go":
            if not force_reason:
                raise NeedsDryRun(
                    f"job {job_id} has no passing dry run (verdict: {dry.get('verdict', 'none')}); "
                    "run the dry run first or force with a reason"
                )
            log.warning("job %s forced without a passing dry run: %s", job_id, force_reason)
            await self.jobs.update(job_id, forced_reason=force_reason)
        if offline:  # only once the run is allowed: a refused run leaves the job as it was
            await self.jobs.update(job_id, offline_mode=True)
            job = {**job, "offline_mode": True}
        return await self._execute(job, extra_sinks)

    async def resume(self, job_id: uuid.UUID, extra_sinks: list[ProgressSink] | None = None) -> dict[str, Any]:
        """Continue from the committed checkpoints; re-running finished work changes nothing.

        Only a job whose run began: that run passed the confirmation and the dry-run check, which a job
        that failed in its dry run never did."""
        job = await self.jobs.get(job_id)
        if job["started_at"] is None or job["status"] not in ("running", "failed", "completed", "interrupted"):
            raise NeedsDryRun(f"job {job_id} has never started a run (status {job['status']}); use run")
        return await self._execute(job, extra_sinks)

    async def _execute(self, job: dict[str, Any], extra_sinks: list[ProgressSink] | None) -> dict[str, Any]:
        job_id = job["id"]
        started = time.monotonic()
        await self.jobs.update(job_id, status="running", started_at=datetime.now(UTC), error=None)
        try:
            accounts = await self._engine(job, extra_sinks).run(str(job_id), offline=job["offline_mode"])
        except asyncio.CancelledError:
            await self._interrupted(job)
            raise
        except Exception as exc:
            await self._fail(job, "load", exc)
            raise
        return await self._complete(job, accounts, time.monotonic() - started)

    async def batch_workers(self, job: dict[str, Any]) -> dict[str, dict[str, int]]:
        """Batches (and rows) each worker replica committed for the job, from the target's checkpoints."""
        conn = await target_db.connect(job["target_dsn"])
        try:
            return await worker_batches(conn, str(job["id"]))
        finally:
            await conn.close()

    async def _complete(self, job: dict[str, Any], accounts: list[EntityAccount], seconds: float) -> dict[str, Any]:
        report = build_report(job, accounts, seconds, workers=await self.batch_workers(job))
        event = JobCompleted(
            job_id=job["id"],
            order_id=job["order_id"],
            rows_total=report["rows_total"],
            rows_migrated=report["rows_migrated"],
            rows_rejected=report["rows_rejected"],
            entities=[
                EntitySummary(
                    entity=a.entity,
                    source=a.source,
                    migrated=a.migrated,
                    rejected=a.rejected,
                    merged=a.merged,
                    success_rate=round(a.success_rate, 2),
                )
                for a in accounts
            ],
            report_url=f"/api/v1/migrations/jobs/{job['id']}/report",
        )
        if report["status"] == "ok":
            await self.jobs.update(job["id"], event, status="completed", report=report, finished_at=datetime.now(UTC))
        else:
            failed = JobFailed(job_id=job["id"], order_id=job["order_id"], reason="verification failed", phase="verify")
            await self.jobs.update(job["id"], failed, status="failed", report=report, error="verification failed")
        return report

    async def _interrupted(self, job: dict[str, Any]) -> None:
        """Stopped from outside. A job the CLI runs says so (Ctrl-C); one the job loop owns keeps its status,
        so another replica takes it over once its row goes stale."""
        if job["scheduled_for"] is None:
            await self.jobs.update(job["id"], status="interrupted")

    async def _fail(self, job: dict[str, Any], phase: str, exc: BaseException) -> None:
        reason = str(exc).strip() or type(exc).__name__
        event = JobFailed(job_id=job["id"], order_id=job["order_id"], reason=reason[:2000], phase=phase)
        await self.jobs.update(job["id"], event, status="failed", error=reason[:4000])

    # ---- verify, report, rollback --------------------------------------------------------------------

    async def verify(self, job_id: uuid.UUID) -> dict[str, Any]:
        job = _has_run(await self.jobs.get(job_id), "verify")
        accounts = await self._engine(job).verify(str(job_id))
        report = build_report(job, accounts, workers=await self.batch_workers(job))
        await self.jobs.update(job_id, report=report)
        return report

    async def report(self, job_id: uuid.UUID) -> dict[str, Any]:
        job = await self.jobs.get(job_id)
        return job["report"] or await self.verify(_has_run(job, "report on")["id"])

    async def rollback(self, job_id: uuid.UUID, *, confirm: bool) -> dict[str, int]:
        if not confirm:
            raise NotConfirmed("a rollback replaces the target tables with their backup: confirm it explicitly")
        job = _has_run(await self.jobs.get(job_id), "roll back")
        if job["status"] in LIVE and datetime.now(UTC) - job["updated_at"] < stale_after(self.settings):
            # A live run would load on after the restore (its own batches, the stall fallback) and then mark
            # the job completed over the roll-back.
            raise NotRunYet(f"job {job_id} is {job['status']} and still reporting: stop it before rolling back")
        restored = await self._engine(job).rollback(str(job_id))
        await self.jobs.update(job_id, status="rolled_back", phase="rollback")
        return restored

    # ---- schedule and purge --------------------------------------------------------------------------

    async def schedule(
        self,
        job_id: uuid.UUID,
        when: datetime,
        *,
        confirm: bool,
        force_reason: str | None = None,
        offline_mode: bool = False,
    ) -> None:
        """The job loop dry-runs the job when it is due and loads it on a go, or on a no-go when forced."""
        _require_confirm(confirm)
        job = await self.jobs.get(job_id)
        event = JobScheduled(job_id=job_id, order_id=job["order_id"], scheduled_for=when, offline_mode=offline_mode)
        forced = {"forced_reason": force_reason} if force_reason else {}
        await self.jobs.update(
            job_id, event, status="scheduled", scheduled_for=when, offline_mode=offline_mode, **forced
        )

    async def purge(self, older_than_days: int | None = None) -> list[uuid.UUID]:
        """Drop staged source copies (the source archive) of jobs older than the retention window."""
        days = self.settings.archive_retention_days if older_than_days is None else older_than_days
        purged = []
        for job in await self.jobs.older_than(datetime.now(UTC) - timedelta(days=days)):
            conn = await target_db.connect(job["target_dsn"])
            try:
                await drop_staging(conn, str(job["id"]))
            finally:
                await conn.close()
            purged.append(job["id"])
        return purged


# ---- broker-driven jobs ----------------------------------------------------------------------------------


class UnknownPlan(ValueError):
    pass


def stale_after(settings: Settings) -> timedelta:
    """How long a live job's row may go unrefreshed before it counts as abandoned (heartbeats: every 10 s)."""
    return timedelta(seconds=max(60.0, settings.progress_interval_seconds * 30))


def _has_run(job: dict[str, Any], action: str) -> dict[str, Any]:
    if job["started_at"] is None:
        raise NotRunYet(f"job {job['id']} has not run (status {job['status']}): nothing to {action}")
    return job


def _require_confirm(confirm: bool) -> None:
    if not confirm:
        raise NotConfirmed("a run writes to the target database: confirm it explicitly")


def source_location(data_sources: list[DataSource]) -> str:
    """Where the job reads from: the folder of the uploaded CSV files, or a PostgreSQL DSN reference."""
    if not data_sources:
        raise ValueError("start_job carries no data source")
    first = data_sources[0]
    if first.kind == "postgres":
        return first.location
    path = Path(first.location.removeprefix("file://"))
    return str(path.parent if path.suffix.lower() == ".csv" else path)


async def accept_start_job(
    service: MigrationService, session: AsyncSession, command: StartJob, now: datetime | None = None
) -> bool:
    """Record the job in the consumer's inbox transaction; the scheduler runs it when it is due.
    The long run itself never happens inside a message handler."""
    now = now or datetime.now(UTC)
    shipped = SHIPPED.get(command.plan)
    if shipped is None:
        raise UnknownPlan(f"unknown migration plan {command.plan!r}; known: {', '.join(SHIPPED)}")
    when = command.scheduled_for or now
    events: list[Payload] = []
    if when > now:
        events.append(
            JobScheduled(
                job_id=command.job_id,
                order_id=command.order_id,
                scheduled_for=when,
                offline_mode=command.offline_mode,
            )
        )
    return await JobStore.create_in(
        session,
        *events,
        id=command.job_id,
        plan_name=shipped.name,
        plan_text=shipped.plan_file.read_text(encoding="utf-8"),
        source_kind="postgres" if command.data_sources and command.data_sources[0].kind == "postgres" else "csv",
        source_location=source_location(command.data_sources),
        target_dsn=service.settings.target_dsn,
        order_id=command.order_id,
        school_id=command.school_id,
        status="scheduled",
        scheduled_for=when,
        offline_mode=command.offline_mode,
        dry_run_only=command.dry_run_only,
    )


async def run_next_due(service: MigrationService, now: datetime | None = None) -> uuid.UUID | None:
    """Claim one due (or abandoned) job and take it through dry run, run and report."""
    job = await service.jobs.claim_due(
        now or datetime.now(UTC), service.settings.worker_name, stale_after(service.settings)
    )
    if job is None:
        return None
    if job["status"] in ("running",):
        await service.resume(job["id"])
        return uuid.UUID(str(job["id"]))
    result = await service.dry_run(job["id"])
    if not job["dry_run_only"] and (result["verdict"] == "go" or job["forced_reason"]):
        await service.run(job["id"], confirm=True, force_reason=job["forced_reason"])
    return uuid.UUID(str(job["id"]))
