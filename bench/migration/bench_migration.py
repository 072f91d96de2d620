"""Benchmark: the migration engine against `psql \\copy` and pgloader on the same legacy CSV.

    uv run python bench/migration/bench_migration.py [--rows 5000000] [--concurrency 2]

Generates the legacy notifications CSV (dirty, realistic) in a temporary folder, then times in one run:
  1. psql \\copy of the file into a table of the same shape (the legacy columns, primary key on the id);
  2. pgloader loading the same file into the same shape (installed with apt-get when missing and root);
  3. the engine migrating it with every transform and validation of the `legacy-notifications` plan
     (stage, transform, validate, de-duplicate, load in checkpointed batches, verify).
Prints rows/s for each, the ratios, and the engine's peak RSS (psutil, sampling its process tree).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: the benchmarks' shared helpers
from bench.cpu import server_cpu_seconds

ADMIN_DSN = os.environ.get("BENCH_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
LEGACY_SHAPE = """CREATE TABLE legacy_notifications_raw (
    notification_id text PRIMARY KEY, school_code text, recipient_name text, recipient_phone text,
    recipient_email text, channel text, message text, status text, sent_at text, cost text, currency text)"""


def dsn_for(database: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def timed(cmd: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def bench_copy(csv: Path, dsn: str) -> float:
    asyncio.run(execute(dsn, LEGACY_SHAPE))
    return timed(
        ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-c", f"\\copy legacy_notifications_raw FROM '{csv}' csv header"]
    )


def ensure_pgloader() -> str | None:
    if shutil.which("pgloader"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "pgloader is not installed and this is not root with apt-get: not measured"
    print("installing pgloader with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", "install", "-y", "pgloader"], capture_output=True, text=True, env=env)
    if result.returncode != 0 or not shutil.which("pgloader"):
        return f"pgloader could not be installed: {result.stderr.strip()[-300:]}"
    return None


def bench_pgloader(csv: Path, dsn: str, workdir: Path) -> tuple[float | None, str | None]:
    problem = ensure_pgloader()
    if problem:
        return None, problem
    asyncio.run(execute(dsn, LEGACY_SHAPE))
    command = workdir / "load.pgl"
    command.write_text(
        f"""LOAD CSV FROM '{csv}' HAVING FIELDS (notification_id, school_code, recipient_name, recipient_phone,
  recipient_email, channel, message, status, sent_at, cost, currency)
INTO {dsn}?legacy_notifications_raw
WITH skip header = 1, fields optionally enclosed by '"', fields escaped by double-quote,
     fields terminated by ',';
""",
        encoding="utf-8",
    )
    try:
        return timed(["pgloader", "--quiet", str(command)], cwd=workdir), None
    except subprocess.CalledProcessError as exc:
        return None, f"pgloader failed: {(exc.stderr or b'').decode()[-300:]}"


def bench_engine(csv_dir: Path, dsn: str, concurrency: int, *, vectorised: bool = True) -> dict[str, Any]:
    """Run the engine in a child process and sample that process tree's memory while it works."""
    cmd = [sys.executable, __file__, "--engine-only", str(csv_dir), dsn, str(concurrency), str(vectorised)]
    peak = {"rss": 0}
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    stop = threading.Event()

    def sample() -> None:
        proc = psutil.Process(child.pid)
        while not stop.is_set():
            try:
                tree = [proc, *proc.children(recursive=True)]
                peak["rss"] = max(peak["rss"], sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"engine run failed (exit {child.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result.update(wall_seconds=elapsed, peak_rss_mb=peak["rss"] / 2**20)
    return result


def engine_only(csv_dir: str, dsn: str, concurrency: int, vectorised: bool) -> None:
    from migration_worker.adapters.sources import CsvFolderSource
    from migration_worker.domain.plan import load_plan
    from migration_worker.engine.engine import EngineOptions, MigrationEngine
    from migration_worker.engine.progress import Progress
    from migration_worker.plans import SHIPPED

    shipped = SHIPPED["legacy-notifications"]
    asyncio.run(execute(dsn, shipped.target_ddl))
    marks: list[tuple[str, float, float, float]] = []  # phase, wall clock, this process's CPU, PostgreSQL's CPU

    def mark(phase: str) -> None:
        marks.append((phase, time.perf_counter(), time.process_time(), server_cpu_seconds()[0]))

    async def phase_marks(p: Progress) -> None:
        # progress arrives phase by phase: a change of phase marks where the previous one ended
        if not marks or marks[-1][0] != p.phase:
            mark(p.phase)

    engine = MigrationEngine(
        load_plan(shipped.plan_file),
        CsvFolderSource(Path(csv_dir)),
        dsn,
        EngineOptions(concurrency=concurrency, vectorised=vectorised),
        progress=[phase_marks],
    )
    started = time.perf_counter()
    accounts = asyncio.run(engine.run(str(uuid.uuid4())))
    seconds = time.perf_counter() - started
    mark("end")
    a = accounts[0]
    phases: dict[str, float] = {}
    cpu: dict[str, dict[str, float]] = {}  # µs of CPU per source row, by phase and by who spent it
    for (phase, at, own, pg), (_, until, own_after, pg_after) in itertools.pairwise(marks):
        phases[phase] = phases.get(phase, 0.0) + until - at
        spent = cpu.setdefault(phase, {"postgres": 0.0, "engine": 0.0})
        spent["postgres"] += 1e6 * (pg_after - pg) / a.source
        spent["engine"] += 1e6 * (own_after - own) / a.source
    print("engine phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()), file=sys.stderr, flush=True)
    if a.status == "failed":
        raise SystemExit(f"verification failed: {a.as_dict()}")
    print(json.dumps({"seconds": seconds, "source": a.source, "migrated": a.migrated, "rejected": a.rejected,
                      "merged": a.merged, "unaccounted": a.unaccounted, "phases": phases,
                      "cpu_us_per_row": cpu}))  # fmt: skip


def cpu_summary(cpu: dict[str, dict[str, float]], cores: int) -> str:
    """CPU per source row by phase, PostgreSQL's and the engine's, and the rate that CPU allows at best: the
    engine and the database share these cores, so no schedule of the same work runs faster."""
    pg, own = (sum(p[who] for p in cpu.values()) for who in ("postgres", "engine"))
    phases = ", ".join(f"{k} {v['postgres']:.1f} + {v['engine']:.1f}" for k, v in cpu.items())
    return (
        f"engine CPU per row = PostgreSQL {pg:.1f} µs + engine {own:.1f} µs = {pg + own:.1f} µs "
        f"-> at most {cores * 1e6 / (pg + own):,.0f} rows/s on {cores} cores\n"
        f"  by phase (µs, PostgreSQL + engine): {phases}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--skip-pgloader", action="store_true")
    parser.add_argument(
        "--sql-prepare", action="store_true", help="transform and validate in PostgreSQL only (no Polars), for A/B"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from migration_worker.plans import SHIPPED

    work = Path(tempfile.mkdtemp(prefix="bench_migration_"))
    databases = {k: f"bench_mig_{k}_{secrets.token_hex(3)}" for k in ("copy", "pgloader", "engine")}
    try:
        started = time.perf_counter()
        SHIPPED["legacy-notifications"].generate(work, args.rows)
        csv = work / "notifications.csv"
        print(f"generated {args.rows:,} rows ({csv.stat().st_size / 2**20:,.0f} MiB) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        for name in databases.values():
            asyncio.run(admin(f'CREATE DATABASE "{name}"'))

        copy_s = bench_copy(csv, dsn_for(databases["copy"]))
        print(f"psql \\copy: {copy_s:.1f} s", flush=True)
        pgl_s, pgl_note = (
            (None, "skipped") if args.skip_pgloader else bench_pgloader(csv, dsn_for(databases["pgloader"]), work)
        )
        print(f"pgloader: {f'{pgl_s:.1f} s' if pgl_s else pgl_note}", flush=True)
        engine = bench_engine(work, dsn_for(databases["engine"]), args.concurrency, vectorised=not args.sql_prepare)
        print(f"engine: {engine['seconds']:.1f} s, peak RSS {engine['peak_rss_mb']:.0f} MiB", flush=True)
    finally:
        for name in databases.values():
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(work, ignore_errors=True)

    rows = args.rows
    figures = {
        "rows": rows,
        "cores": os.cpu_count(),
        "copy_rows_per_s": rows / copy_s,
        "pgloader_rows_per_s": rows / pgl_s if pgl_s else None,
        "pgloader_note": pgl_note,
        "engine_rows_per_s": rows / engine["seconds"],
        "engine_seconds": engine["seconds"],
        "engine_peak_rss_mb": engine["peak_rss_mb"],
        "engine_accounting": {k: engine[k] for k in ("source", "migrated", "rejected", "merged", "unaccounted")},
        "engine_phases_s": engine.get("phases"),
        "engine_cpu_us_per_row": engine.get("cpu_us_per_row"),
    }
    figures["engine_vs_copy"] = figures["engine_rows_per_s"] / figures["copy_rows_per_s"]
    figures["engine_vs_pgloader"] = (
        figures["engine_rows_per_s"] / figures["pgloader_rows_per_s"] if figures["pgloader_rows_per_s"] else None
    )
    print()
    print(f"{'tool':<28}{'seconds':>10}{'rows/s':>14}")
    copy_label = "psql \\copy (no checks)"
    print(f"{copy_label:<28}{copy_s:>10.1f}{figures['copy_rows_per_s']:>14,.0f}")
    if pgl_s:
        print(f"{'pgloader (no checks)':<28}{pgl_s:>10.1f}{figures['pgloader_rows_per_s']:>14,.0f}")
    else:
        print(f"{'pgloader':<28}{'-':>10}{'-':>14}   {pgl_note}")
    print(f"{'engine (validations on)':<28}{engine['seconds']:>10.1f}{figures['engine_rows_per_s']:>14,.0f}")
    print()
    print("engine / \\copy    = " + f"{figures['engine_vs_copy']:.2f}x   (goal >= 0.4x)")
    if figures["engine_vs_pgloader"]:
        print(f"engine / pgloader = {figures['engine_vs_pgloader']:.2f}x   (goal >= 4x)")
    print(f"engine rows/s     = {figures['engine_rows_per_s']:,.0f}   (goal >= 150,000)")
    print(f"engine peak RSS   = {engine['peak_rss_mb']:.0f} MiB   (goal < 500 MiB)")
    print(f"accounting        = {figures['engine_accounting']}")
    print("engine phases     = " + ", ".join(f"{k} {v:.1f} s" for k, v in engine.get("phases", {}).items()))
    print(cpu_summary(engine["cpu_us_per_row"], os.cpu_count() or 1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--engine-only":
        engine_only(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "True")
    else:
        main()
