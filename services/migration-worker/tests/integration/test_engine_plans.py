"""Each shipped plan end to end on generated dirty data: dry run writes nothing; the run accounts for
every row exactly; rejects carry reasons and the original row; foreign keys hold; a rerun changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from migration_worker.adapters.sources import CsvFolderSource
from migration_worker.domain.plan import load_plan
from migration_worker.engine.engine import EngineOptions, MigrationEngine
from migration_worker.plans import SHIPPED

from ..helpers import count, target_checksum

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("plan_name", "rows"), [("school-sis", 600), ("bookings-to-users", 1500)])
async def test_plan_end_to_end(plan_name: str, rows: int, make_target: Callable[..., Any], tmp_path: Path) -> None:
    shipped = SHIPPED[plan_name]
    shipped.generate(tmp_path, rows)
    plan = load_plan(shipped.plan_file)
    dsn = await make_target(plan_name)
    engine = MigrationEngine(plan, CsvFolderSource(tmp_path), dsn, EngineOptions(concurrency=2, batch_size=97))

    dry = await engine.dry_run()
    assert dry["rows_total"] > rows
    assert dry["errors"] > 0, "the generated data is dirty; the dry run must find it"
    for table in plan.target_tables:
        assert await count(dsn, f'SELECT count(*) FROM "{table}"') == 0
    assert await count(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'oneclass_migration%'") == 0

    job = str(uuid.uuid4())
    accounts = await engine.run(job)
    by_entity = {e["entity"]: e for e in dry["entities"]}
    for account in accounts:
        assert account.unaccounted == 0, account
        assert account.source == by_entity[account.entity]["source_rows"]
        insert_rejects = sum(n for reason, n in account.reasons.items() if reason.startswith("insert:"))
        assert account.rejected == by_entity[account.entity]["rejected"] + insert_rejects
        assert account.orphans == 0
        assert account.duplicate_keys == 0
        assert account.missing_in_target == 0
        assert account.spot_mismatches == []
        target_rows = await count(dsn, f'SELECT count(*) FROM "{account.target_table}"')
        assert target_rows == account.migrated
        logged = await count(
            dsn,
            "SELECT count(*) FROM oneclass_migration.rejects WHERE job_id = $1 AND entity = $2",
            job,
            account.entity,
        )
        assert logged == account.rejected

    conn = await asyncpg.connect(dsn)
    try:
        reject = await conn.fetchrow(
            "SELECT reasons, original FROM oneclass_migration.rejects WHERE job_id = $1 "
            "ORDER BY entity, row_no LIMIT 1",
            job,
        )
    finally:
        await conn.close()
    assert reject["reasons"]
    assert ":" in reject["reasons"][0]
    assert reject["original"] != "{}"

    before = await target_checksum(dsn, plan)
    again = await engine.run(job)  # resuming a finished job changes nothing
    assert await target_checksum(dsn, plan) == before
    assert [a.migrated for a in again] == [a.migrated for a in accounts]
    fresh = await engine.run(str(uuid.uuid4()))  # a second job over the same data: idempotent upserts
    assert await target_checksum(dsn, plan) == before
    assert [a.unaccounted for a in fresh] == [0] * len(fresh)


async def test_bookings_business_rules(make_target: Callable[..., Any], tmp_path: Path) -> None:
    shipped = SHIPPED["bookings-to-users"]
    shipped.generate(tmp_path, 800)
    dsn = await make_target("bookings-to-users")
    engine = MigrationEngine(load_plan(shipped.plan_file), CsvFolderSource(tmp_path), dsn)
    accounts = {a.entity: a for a in await engine.run(str(uuid.uuid4()))}
    assert accounts["users"].merged > 0  # the same customer under differently typed e-mails
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users GROUP BY lower(email) ORDER BY 1 DESC LIMIT 1") == 1
        bad_refs = await conn.fetchval(
            "SELECT count(*) FROM payments p JOIN bookings b ON b.id = p.booking_id "
            "WHERE p.reference <> 'MIGRATED-' || b.legacy_key OR b.status <> 'paid'"
        )
        assert bad_refs == 0
        paid = await conn.fetchval("SELECT count(*) FROM bookings WHERE status = 'paid'")
        assert await conn.fetchval("SELECT count(*) FROM payments") == paid
        mismatched = await conn.fetchval(
            "SELECT count(*) FROM user_statistics s JOIN users u ON u.id = s.user_id "
            "JOIN LATERAL (SELECT count(*) AS n, "
            "coalesce(sum(amount_minor) FILTER (WHERE status = 'paid'), 0) AS spent "
            "FROM bookings b WHERE b.user_id = u.id) b ON true "
            "WHERE s.total_bookings <> b.n OR s.total_spent_minor <> b.spent"
        )
        assert mismatched == 0
    finally:
        await conn.close()


async def test_constraint_failures_are_isolated_by_bisection(make_target: Callable[..., Any], tmp_path: Path) -> None:
    """fee_payments has a CHECK the plan does not know about: the rows breaking it are rejected one by one
    with the database's reason, and every other row of their batches is loaded."""
    shipped = SHIPPED["school-sis"]
    shipped.generate(tmp_path, 800)
    dsn = await make_target("school-sis")
    engine = MigrationEngine(
        load_plan(shipped.plan_file), CsvFolderSource(tmp_path), dsn, EngineOptions(batch_size=500)
    )
    accounts = {a.entity: a for a in await engine.run(str(uuid.uuid4()))}
    payments = accounts["fee_payments"]
    insert_rejects = sum(n for reason, n in payments.reasons.items() if reason.startswith("insert:23514"))
    assert insert_rejects > 0
    assert payments.unaccounted == 0
    assert await count(dsn, "SELECT count(*) FROM fee_payments WHERE paid_on < DATE '2000-01-01'") == 0
    assert await count(dsn, "SELECT count(*) FROM fee_payments") == payments.migrated


async def test_dry_run_leaves_the_target_untouched_even_its_sequences(
    make_target: Callable[..., Any], tmp_path: Path
) -> None:
    shipped = SHIPPED["bookings-to-users"]
    shipped.generate(tmp_path, 300)
    dsn = await make_target("bookings-to-users")
    engine = MigrationEngine(load_plan(shipped.plan_file), CsvFolderSource(tmp_path), dsn)
    await engine.dry_run()
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT last_value FROM users_id_seq") == 1
        assert await conn.fetchval("SELECT is_called FROM users_id_seq") is False
    finally:
        await conn.close()
