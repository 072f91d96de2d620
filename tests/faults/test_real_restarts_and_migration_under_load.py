"""The servers themselves restarted under load, and a migration whose worker is SIGKILLed.

While orders are created, approved and paid (each provider webhook arriving three times), SMS go out
and a school-sis migration runs through the worker: the migration worker is SIGKILLed in the middle of
its load and restarted; the real RabbitMQ is stopped and started again (`rabbitmqctl stop_app` /
`start_app`); the real PostgreSQL cluster is restarted (`pg_ctlcluster ... restart`, fast mode: every
connection of every service is dropped). Each server is restored and waited for in a `finally`.

Afterwards: the ledger of the other fault test (nothing lost, doubled or leaked), and the migration's
accounting exact — per entity source = migrated + rejected + merged, source = its CSV rows, migrated =
its target rows — with the target's content equal to an undisturbed run of the same data by the CLI.

These restarts hit every user of the shared servers: outside `make test` (which runs serially), run it
alone: `flock -x <infra lock> uv run pytest tests/faults/test_real_restarts_and_migration_under_load.py`.
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from servicekit.testing import ADMIN_DSN

from tests.support.system import running_system

from . import migration
from .harness import report_and_assert_nothing_lost, say, settle_and_check, workload_running
from .test_kill_and_outages_under_load import _grows

# bounded by its own waits (progress between faults, the settle budget), which on a loaded 2-core
# machine can pass the suite's default per-test timeout
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SERVICES = ["orders", "payments", "notifications", "migration-worker"]
OUTAGE_SECONDS = 3.0
MIGRATION_ROWS = 300  # students; the other entities follow from it (about 1,500 rows in all)
BATCH_SIZE = 40  # many small batches, so the SIGKILL lands between committed checkpoints


def _run(*argv: str, timeout: float = 120) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.returncode} {done.stdout} {done.stderr}"


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def restart_rabbitmq(outage: float) -> None:
    """Stop the broker application (every connection and channel closes), keep it down, start it again."""
    try:
        _run("rabbitmqctl", "-q", "stop_app")
        time.sleep(outage)
    finally:
        _run("rabbitmqctl", "-q", "start_app")
        _run("rabbitmqctl", "-q", "await_startup")


def postgres_cluster() -> tuple[str, str]:
    lines = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout.splitlines()
    port = str(urlsplit(ADMIN_DSN).port or 5432)
    for line in lines:
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, name
    raise AssertionError(f"no PostgreSQL cluster on port {port}: {lines}")


def restart_postgres() -> None:
    """Fast-mode restart of the whole cluster: every session of every service is terminated."""
    version, name = postgres_cluster()
    try:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart")
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"], capture_output=True)
        _eventually(
            lambda: subprocess.run(["pg_isready", "-q", "-d", ADMIN_DSN]).returncode == 0, 60, "PostgreSQL back"
        )


def test_real_rabbitmq_and_postgresql_restarts_and_a_killed_migration_under_load(tmp_path: Path) -> None:
    data = tmp_path / "sis"
    injected: list[str] = []
    with migration.throwaway_targets(2) as (target, reference):
        files = migration.sample_data(data, MIGRATION_ROWS, target, reference)
        migration.reference_run(data, reference, tmp_path)
        expected = migration.target_checksum(reference)
        # Each batch dwells a little, so the SIGKILL below lands mid-load and not after the last batch.
        migration.slow_inserts(target, 0.2)
        say(f"migration source: {sum(files.values())} rows in {files}; reference run done")

        with running_system(
            tmp_path / "system",
            SERVICES,
            MIGRATIONS_TARGET_DATABASE_URL=target,
            MIGRATIONS_BATCH_SIZE=str(BATCH_SIZE),
            MIGRATIONS_CONCURRENCY="1",
            MIGRATIONS_PROGRESS_INTERVAL_SECONDS="0.5",
            MIGRATIONS_SCHEDULER_POLL_SECONDS="1",
            MIGRATIONS_LOG_DIR=str(tmp_path / "migration-logs"),
        ) as system:
            with workload_running(system, pay_every=2) as load:
                _grows(load.placed, 3)
                job_id = migration.start_job(system, data)
                say(f"migration job {job_id} started through migrations.cmd.start_job.v1")

                def loading() -> bool:
                    status = migration.job_status(system, job_id) or {}
                    assert status.get("status") not in migration.FINISHED, f"finished before the kill: {status}"
                    committed = sum(migration.target_row_counts(target).values())
                    return status.get("phase") == "load" and committed > 0

                _eventually(loading, 180, "the migration committing its first batches")
                system.restart("migration-worker", kill=True)
                committed = sum(migration.target_row_counts(target).values())
                reference_rows = sum(n for n, _ in expected.values())
                # the kill must land mid-run for the check to mean anything
                assert 0 < committed < reference_rows, (committed, reference_rows)
                injected.append(
                    f"SIGKILL migration-worker mid-load ({committed} of {reference_rows} target rows in) + restart"
                )
                say(injected[-1])
                _grows(load.placed, 2)

                restart_rabbitmq(OUTAGE_SECONDS)
                injected.append(f"RabbitMQ stop_app, {OUTAGE_SECONDS:.0f} s down, start_app")
                say(injected[-1])
                for name in SERVICES:
                    ready = f"{system.url(name)}/readyz"
                    _eventually(functools.partial(_answers, ready), 120, f"{name} ready after RabbitMQ")
                _grows(load.placed, 2)

                restart_postgres()
                injected.append("PostgreSQL cluster restarted (fast mode)")
                say(injected[-1])
                _grows(load.placed, 3)
                say("workload stops; settling")

            ledger = settle_and_check(system, load.placed, timeout=240)
            finished = migration.wait_for_job(system, job_id, 300)
            say(f"migration job: {finished}")
            report_and_assert_nothing_lost(system, SERVICES, ledger, load, injected)

            assert finished is not None, "the migration job vanished"
            assert finished["status"] == "completed", finished
            job_report = migration.report(system, job_id)
            accounting = migration.check_accounting(job_report, files, target)
            actual = migration.target_checksum(target)
            say(f"migration report: { {k: v for k, v in job_report.items() if k != 'entities'} }")
            say(
                f"migration accounting: source {accounting.source_rows} = migrated {accounting.migrated} + rejected "
                f"{accounting.rejected} + merged {accounting.merged}; unaccounted {accounting.unaccounted}; "
                f"mismatches {accounting.entity_mismatches}; target equals the undisturbed run: {actual == expected}"
            )
            assert accounting.exact, accounting
            differing = {t: (actual.get(t), want) for t, want in expected.items() if actual.get(t) != want}
            assert actual == expected, differing
