"""`oneclass-migrate`: the operator's command line. Thin: parse, call a use case, show the result."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from servicekit.alembic_env import upgrade

from migration_worker.adapters.jobstore import JobNotFound
from migration_worker.adapters.reports import ReportFormat, render
from migration_worker.adapters.sources import SourceError
from migration_worker.adapters.target_db import TargetError
from migration_worker.bootstrap import bootstrap
from migration_worker.domain.plan import PlanError, load_plan
from migration_worker.engine import progress as engine_progress
from migration_worker.plans import SHIPPED
from migration_worker.service_layer.handlers import MigrationService, NeedsDryRun, NotConfirmed, NotRunYet
from migration_worker.settings import Settings

app = typer.Typer(help="OneClass migration engine: plan, dry-run, run, resume, verify, report, roll back.")
plan_app = typer.Typer(help="Work with migration plans.")
app.add_typer(plan_app, name="plan")
console = Console()
ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"
EXPECTED = (PlanError, SourceError, TargetError, NeedsDryRun, NotConfirmed, NotRunYet, JobNotFound, ValueError)

T = TypeVar("T")
JobId = Annotated[uuid.UUID, typer.Argument(help="migration job id")]
Target = Annotated[str | None, typer.Option("--target", help="target database URL (default: settings)")]


def _setup_logging(settings: Settings) -> None:
    folder = Path(settings.log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / "oneclass-migrate.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _run(work: Callable[[MigrationService], Coroutine[Any, Any, T]]) -> T:
    """Build the service, run one use case, turn expected failures into a clear message and exit 2."""
    settings = Settings()
    _setup_logging(settings)

    async def main() -> T:
        service = bootstrap(settings)
        try:
            return await work(service)
        finally:
            await service.jobs.db.dispose()

    try:
        return asyncio.run(main())
    except EXPECTED as exc:
        logging.getLogger("migration_worker.cli").error("%s", exc)
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def _live_progress() -> tuple[Progress, Callable[[engine_progress.Progress], Awaitable[None]]]:
    bar = Progress(
        TextColumn("[bold]{task.fields[phase]:>8}[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    )
    tasks: dict[str, Any] = {}

    async def sink(p: engine_progress.Progress) -> None:
        key = f"{p.phase}:{p.entity}"
        if key not in tasks:
            tasks[key] = bar.add_task(p.entity or "-", total=p.rows_total or None, phase=p.phase, rate="")
        rate = f"{p.rows_per_second:,.0f} rows/s" if p.rows_per_second else ""
        bar.update(tasks[key], completed=p.rows_done, total=p.rows_total or None, rate=rate)

    return bar, sink


# ---- plans ---------------------------------------------------------------------------------------------


@plan_app.command("validate")
def plan_validate(plan_file: Path) -> None:
    """Check a plan file; every problem is listed with its place in the file."""
    try:
        plan = load_plan(plan_file)
    except PlanError as exc:
        console.print(f"[bold red]{exc}[/]")
        raise typer.Exit(2) from exc
    console.print(f"[green]plan {plan.name!r} is valid[/]: {len(plan.entities)} entities in order: "
                  + ", ".join(e.name for e in plan.entities))  # fmt: skip


@plan_app.command("list")
def plan_list() -> None:
    """The plans shipped with the engine."""
    for name, shipped in SHIPPED.items():
        console.print(f"{name}: {shipped.plan_file}")


@app.command("generate-sample")
def generate_sample(
    plan_name: Annotated[str, typer.Argument(help=f"one of {', '.join(SHIPPED)}")],
    output: Annotated[Path, typer.Option("--output", "-o")],
    rows: Annotated[int, typer.Option("--rows")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    create_target: Annotated[str | None, typer.Option(help="also create the plan's tables in this database")] = None,
) -> None:
    """Generate realistic dirty sample data for a shipped plan."""
    if plan_name not in SHIPPED:
        console.print(f"[red]unknown plan {plan_name!r}; shipped: {', '.join(SHIPPED)}[/]")
        raise typer.Exit(2)
    shipped = SHIPPED[plan_name]
    counts = shipped.generate(output, rows, seed=seed)
    for file, n in counts.items():
        console.print(f"{output / file}: {n:,} rows")
    if create_target:

        async def create() -> None:
            conn = await asyncpg.connect(create_target.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                await conn.execute(shipped.target_ddl)
            finally:
                await conn.close()

        asyncio.run(create())
        console.print(f"target tables of {plan_name} created")


@app.command("migrate-db")
def migrate_db() -> None:
    """Create or upgrade the worker's own database (jobs, outbox, inbox)."""
    upgrade(ALEMBIC_INI, Settings().database_url)
    console.print("[green]worker database is up to date[/]")


# ---- jobs ----------------------------------------------------------------------------------------------


def _dry_run_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"dry run of {result['plan']}: {result['verdict'].upper()}")
    for column in ("entity", "source", "create", "update", "rejected", "merged", "warnings"):
        table.add_column(column, justify="left" if column == "entity" else "right")
    for e in result["entities"]:
        table.add_row(
            e["entity"], f"{e['source_rows']:,}", f"{e['to_create']:,}", f"{e['to_update']:,}",
            f"{e['rejected']:,}", f"{e['merged']:,}", f"{e['warned']:,}",
        )  # fmt: skip
    return table


def _findings(result: dict[str, Any]) -> None:
    for e in result["entities"]:
        for rule, finding in e["rules"].items():
            example = finding["examples"][0] if finding["examples"] else None
            where = f" e.g. source row {example['row']}" if example else ""
            console.print(f"  {e['entity']}: {finding['severity']} [bold]{rule}[/] x{finding['rows']:,}{where}")


@app.command("dry-run")
def dry_run(
    plan_file: Path,
    source: Annotated[str, typer.Option("--source", help="CSV folder, or source DSN reference")],
    target: Target = None,
    output: Annotated[Path | None, typer.Option(help="write the full JSON result here")] = None,
) -> None:
    """Validate everything and report what a run would do. Writes nothing to the target."""

    try:
        load_plan(plan_file)  # clear errors for a bad or unreadable plan before anything else
    except PlanError as exc:
        console.print(f"[bold red]{exc}[/]")
        raise typer.Exit(2) from exc
    text = plan_file.read_text(encoding="utf-8")

    async def work(service: MigrationService) -> dict[str, Any]:
        job_id = await service.create_job(text, source, target_dsn=target)
        result = await service.dry_run(job_id)
        return {"job_id": str(job_id), **result}

    result = _run(work)
    console.print(_dry_run_table(result))
    _findings(result)
    console.print(
        f"job [bold]{result['job_id']}[/]: {result['rows_total']:,} rows, {result['errors']:,} errors, "
        f"{result['warnings']:,} warnings; estimated run {result['estimated_seconds']:.0f} s, "
        f"disk {result['disk_bytes_needed'] / 2**20:,.0f} MiB"
    )
    if output:
        output.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    raise typer.Exit(0 if result["verdict"] == "go" else 1)


@app.command("run")
def run(
    job_id: JobId,
    confirm: Annotated[bool, typer.Option("--confirm", help="required: the run writes to the target")] = False,
    force: Annotated[str | None, typer.Option(help="run without a passing dry run; give the reason")] = None,
    at: Annotated[datetime | None, typer.Option(help="schedule the run for this time (ISO 8601, with zone)")] = None,
    offline: Annotated[bool, typer.Option(help="block other connections to the target during the run")] = False,
) -> None:
    """Load a dry-run job into the target (or schedule it with --at: dry-run again and loaded when due)."""
    if at is not None:
        _run(lambda s: s.schedule(job_id, at, confirm=confirm, force_reason=force, offline_mode=offline))
        console.print(f"job {job_id} scheduled for {at.isoformat()}")
        return
    bar, sink = _live_progress()

    async def work(service: MigrationService) -> dict[str, Any]:
        with bar:
            return await service.run(job_id, confirm=confirm, force_reason=force, offline=offline, extra_sinks=[sink])

    _show_report(_run(work))


@app.command("resume")
def resume(job_id: JobId) -> None:
    """Continue an interrupted job from its checkpoints."""
    bar, sink = _live_progress()

    async def work(service: MigrationService) -> dict[str, Any]:
        with bar:
            return await service.resume(job_id, extra_sinks=[sink])

    _show_report(_run(work))


@app.command("verify")
def verify(job_id: JobId) -> None:
    """Re-check accounting, foreign keys, uniqueness and a 100-row spot check."""
    _show_report(_run(lambda s: s.verify(job_id)))


@app.command("report")
def report(
    job_id: JobId,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="json, markdown or html")] = ReportFormat.markdown,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """The job's report in JSON, Markdown or HTML."""
    text = render(_run(lambda s: s.report(job_id)), fmt.value)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"report written to {output}")
    else:
        _echo(text)


@app.command("status")
def status(job_id: JobId) -> None:
    """Where a job is: status, phase, progress."""
    job = _run(lambda s: s.jobs.get(job_id))
    console.print(f"job {job['id']} ({job['plan_name']}): [bold]{job['status']}[/] phase={job['phase']}")
    if job["progress"]:
        console.print(job["progress"])
    if job["error"]:
        console.print(f"[red]{job['error']}[/]")


@app.command("rollback")
def rollback(
    job_id: JobId,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="required: replaces target tables with the backup")
    ] = False,
) -> None:
    """Restore the target tables from the backup taken before the job's first write."""
    restored = _run(lambda s: s.rollback(job_id, confirm=confirm))
    for table, rows in restored.items():
        console.print(f"{table}: restored {rows:,} rows")


@app.command("purge")
def purge(older_than_days: Annotated[int | None, typer.Option(help="default: the archive retention")] = None) -> None:
    """Drop staged source archives of jobs older than the retention window (90 days by default)."""
    purged = _run(lambda s: s.purge(older_than_days))
    console.print(f"purged the source archives of {len(purged)} job(s)")


def _echo(text: str) -> None:
    """A document as is: the console would wrap long lines at the terminal's width (80 columns in a pipe),
    which breaks Markdown tables and JSON."""
    typer.echo(text, nl=not text.endswith("\n"))


def _show_report(report: dict[str, Any]) -> None:
    _echo(render(report, "markdown"))
    if report["status"] != "ok":
        raise typer.Exit(1)
