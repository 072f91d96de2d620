"""The SQL transforms, run on the real PostgreSQL, against independent oracles."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import asyncpg
import phonenumbers
import pytest
from migration_worker.domain.plan import parse_plan
from migration_worker.domain.sqlgen import EntitySql, lit
from migration_worker.plans.notifications.generate import zimbabwe_phone

pytestmark = pytest.mark.integration

PLAN = """
name: t
source: {kind: csv}
entities:
  - name: e
    source: {file: e.csv}
    target_table: e
    legacy_key: {from: k}
    fields:
      phone: {from: v, transforms: [phone_e164]}
      day: {from: v, transforms: [trim, {parse_date: ["%Y-%m-%d", "%d/%m/%Y"]}]}
      amount: {from: v, transforms: [{money_minor: 2}]}
      at: {from: v, transforms: [trim, {parse_timestamp: ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M"]}]}
"""


async def _evaluate(make_target: Callable[..., Any], field: str, values: list[str | None]) -> list[Any]:
    """Run the generated prepare SQL for one field over `values`; returns the prepared values in order."""
    dsn = await make_target()
    entity = parse_plan(PLAN).entities[0]
    sql = EntitySql(entity, "pg_temp.raw", "pg_temp.clean", "e", "legacy_key", False, "UTC")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE raw (_row_no bigint, k text, v text)")
        await conn.executemany("INSERT INTO raw VALUES ($1, $2, $3)", [(i, str(i), v) for i, v in enumerate(values, 1)])
        await conn.execute(sql.clean_ddl(temporary=True))
        await conn.execute(sql.prepare_sql(), 0, len(values))
        return [r[0] for r in await conn.fetch(f'SELECT "{field}" FROM pg_temp.clean ORDER BY _row_no')]
    finally:
        await conn.close()


def _oracle_e164(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, "ZW")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


async def test_phone_normalisation_agrees_with_phonenumbers(make_target: Callable[..., Any]) -> None:
    rnd = random.Random(3)
    samples = [zimbabwe_phone(rnd) for _ in range(300)]
    samples += ["+44 20 7946 0958", "0044 20 7946 0958", "+1 (202) 555-0143", "12345", "n/a", "0912 345 678"]
    got = await _evaluate(make_target, "phone", samples)
    for raw, value in zip(samples, got, strict=True):
        expected = _oracle_e164(raw)
        if expected is not None and raw.lstrip().startswith(("+", "00", "0", "2", "7")):
            assert value == expected, raw
        if value is not None:
            assert _oracle_e164(value) == value, raw  # whatever we produce is valid E.164


async def test_impossible_dates_become_null_not_errors(make_target: Callable[..., Any]) -> None:
    values = [
        "2024-02-29", "2023-02-29", "31/04/2021", "30/04/2021", "2021-13-01", "0000-01-01", "2021-1-01", "x",
        "2024--1-05", "2024-1--05", "+024-01-05", "1900-02-29", "2000-02-29",
    ]  # fmt: skip
    got = await _evaluate(make_target, "day", values)
    assert [str(d) if d else None for d in got] == [
        "2024-02-29", None, None, "2021-04-30", None, None, None, None,
        None, None, None, None, "2000-02-29",
    ]  # fmt: skip


async def test_timestamps_in_several_formats(make_target: Callable[..., Any]) -> None:
    values = [
        "2024-02-29 23:59:59", "29/02/2024 07:05", "2024-02-29 24:00:00", "2024-02-29 10:60:00",
        "2024-02-29T10:00:00", "2024-02-29 10:00", "29/02/2023 07:05", "2024-0a-29 10:00:00", "2024-02-29 1:00:00 ",
    ]  # fmt: skip
    got = await _evaluate(make_target, "at", values)
    assert [d.strftime("%Y-%m-%d %H:%M:%S") if d else None for d in got] == [
        "2024-02-29 23:59:59", "2024-02-29 07:05:00", None, None, None, None, None, None, None,
    ]  # fmt: skip


async def test_money_to_minor_units(make_target: Callable[..., Any]) -> None:
    got = await _evaluate(make_target, "amount", ["1,234.50", "$12", "-3.005", ".5", "1.2.3", "abc", "-", "12-3"])
    assert got == [123450, 1200, -301, 50, None, None, None, None]


def test_literals_are_quoted() -> None:
    assert lit("O'Brien") == "'O''Brien'"


@pytest.mark.parametrize(("keep", "survivor"), [("earliest", "first"), ("latest", "second")])
async def test_dedupe_without_order_by_keeps_by_position_in_the_source(
    make_target: Callable[..., Any], keep: str, survivor: str
) -> None:
    plan = f"""
name: t
source: {{kind: csv}}
entities:
  - name: e
    source: {{file: e.csv}}
    target_table: e
    legacy_key: {{from: k}}
    dedupe: {{keep: {keep}}}
    fields:
      name: {{from: v}}
"""
    sql = EntitySql(parse_plan(plan).entities[0], "pg_temp.raw", "pg_temp.clean", "e", "legacy_key", False, "UTC")
    conn = await asyncpg.connect(await make_target())
    try:
        await conn.execute("CREATE TEMP TABLE raw (_row_no bigint, k text, v text)")
        rows = [(1, "a", "first"), (2, "a", "second"), (3, "b", "only")]
        await conn.executemany("INSERT INTO raw VALUES ($1, $2, $3)", rows)
        await conn.execute(sql.clean_ddl(temporary=True))
        await conn.execute(sql.prepare_sql(), 0, len(rows))
        await conn.execute(sql.duplicate_key_sql())
        kept = await conn.fetch("SELECT name FROM pg_temp.clean WHERE _status = 'v' ORDER BY _row_no")
        merged = await conn.fetchval("SELECT count(*) FROM pg_temp.clean WHERE _status = 'm'")
    finally:
        await conn.close()
    assert [r["name"] for r in kept] == sorted([survivor, "only"], key=["first", "second", "only"].index)
    assert merged == 1
