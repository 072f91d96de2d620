"""The Polars prepare against the SQL prepare: the same prepared rows, row for row, on the real PostgreSQL."""

from __future__ import annotations

import csv
import logging
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from migration_worker.adapters import target_db
from migration_worker.adapters.sources import CsvFolderSource, PostgresSource, SourceError
from migration_worker.bootstrap import bootstrap
from migration_worker.domain.plan import Plan, load_plan, parse_plan
from migration_worker.engine import vector_prepare
from migration_worker.engine.engine import EngineOptions, MigrationEngine
from migration_worker.engine.staging import Staging, create_raw
from migration_worker.plans import SHIPPED
from migration_worker.settings import Settings

from ..helpers import target_checksum

pytestmark = pytest.mark.integration

EDGE_PLAN = r"""
name: edge
source: {kind: csv}
options: {source_timezone: Africa/Harare}
entities:
  - name: e
    source: {file: e.csv}
    target_table: e
    legacy_key: {from: k, transforms: [trim, upper]}
    fields:
      name: {from: v, transforms: [trim, collapse_spaces, title]}
      lowered: {from: v, transforms: [lower]}
      upped: {from: v, transforms: [trim, upper]}
      phone: {from: v, transforms: [phone_e164], on_invalid: warning}
      day: {from: v, transforms: [trim, {parse_date: ["%Y-%m-%d", "%d/%m/%Y"]}], on_invalid: warning}
      at:
        from: v
        transforms: [trim, {parse_timestamp: ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%Y%m%d"]}]
        on_invalid: warning
      amount: {from: v, transforms: [{money_minor: 2}], on_invalid: warning}
      whole: {from: v, transforms: [{money_minor: 0}], on_invalid: warning}
      channel: {from: v, transforms: [trim, lower, {map: {sms: sms, text: sms, wa: whatsapp}, default: other}]}
      picked: {from: v, transforms: [trim, {map: {a: A, b: B}}], on_invalid: warning}
      fallback: {from: v, transforms: [trim, {default: none}]}
      constant: {value: fixed, transforms: [upper]}
      count: {from: v, type: integer, on_invalid: warning}
      big: {from: v, type: bigint, on_invalid: warning}
      ratio: {from: v, type: numeric, on_invalid: warning}
      flag: {from: v, type: boolean, on_invalid: warning}
      born: {from: v, type: date, on_invalid: warning}
      seen: {from: v, type: timestamptz, on_invalid: warning}
      raw: {from: v}
    validations:
      - {rule: required, field: fallback}
      - {rule: required, field: raw, severity: warning}
      - {rule: format, field: upped, pattern: '^[A-Z]{3}$', severity: warning}
      - {rule: format, field: raw, pattern: '^[^@\s]+@[^@\s]+\.[a-z]{2,}$'}
      - {rule: range, field: amount, min: 0, max: 100000}
      - {rule: range, field: count, min: -5}
"""

EDGE_VALUES: list[str | None] = [
    None, "", "   ", " a ", "b", "o'brien  mc-DONALD", "3RD street", "x1y2 z", "mary\tjane\n smith", "a  b   c",
    "ÉLODIE dupont", "straße", "A\u00a0B", "emoji \U0001f600", "日本", '"quoted"', "comma, inside", "back\\slash",
    "0771234567", "+263 77 123 4567", "00263771234567", "263771234567", "771234567", "(077) 123-4567",
    "0731000000", "0730123456", "+44 20 7946 0958", "0044 20 7946 0958", "+1 (202) 555-0143", "+", "++263",
    "12345", "n/a", "0912 345 678", "+2630771234567", "$1,234.565", "-0.005", "0.005", "-.5", ".5", "5.", "1.2.3",
    "5-", "--5", "-", ".", "-.", "12345678901234567890", "123456789012345.67", "12345678901234.5", "00012.5",
    " 42 ", "+7", "-6", "-2147483648", "2147483648", "999999999", "1e5", "1.50", " 3.25 ", "true", "YES", " n ",
    "0", "1", "t", "2024-02-29", "2023-02-29", "29/02/2024 13:45", "31/04/2021 10:00", "29/02/2024",
    "2021-12-31 23:59:59", "2021-12-31 24:00:00", "2021-12-31T10:00:00", "2021-12-31 10:00", "20240229",
    "0001-01-01", "0000-01-01", "1899-06-15 12:00:00", "2021-1-01", "2024--1-05", "+024-01-05", "sms", "TEXT",
    " Sms ", "wa", "whatsapp", "user@example.com", "bad@", "Bad@Example.COM", "usd", "USD", "us", "ÜSD",
]  # fmt: skip


def _fuzz(rnd: random.Random, n: int) -> list[str]:
    """ASCII strings shaped like the fields' inputs: digits and separators, letters, money and phone marks."""
    alphabet = "0123456789" * 4 + "aZbYsmtx" + " -/.:+$,()'\t@_"
    values = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 20))) for _ in range(n)]
    values += [f"{rnd.randint(0, 40):02d}/{rnd.randint(0, 14):02d}/{rnd.randint(1890, 2030)}" for _ in range(n // 4)]
    values += [f"{rnd.randint(-99, 99999)}.{rnd.randint(0, 9999)}" for _ in range(n // 4)]
    values += [f"0{rnd.choice(['71', '73', '77', '78', '79'])}{rnd.randint(0, 9999999):07d}" for _ in range(n // 4)]
    return values


def _write(folder: Path, name: str, header: list[str], rows: list[list[str | None]]) -> None:
    with (folder / name).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


async def _prepare_both(dsn: str, plan: Plan, folder: Path) -> tuple[int, int, int]:
    """Prepare the plan's first entity with SQL and with Polars (+ SQL for what it leaves out); returns
    (rows, rows left to SQL, rows that differ between the two prepared tables)."""
    source = CsvFolderSource(folder)
    entity = plan.entities[0]
    assert entity.source.file is not None
    conn = await asyncpg.connect(dsn)
    try:
        await target_db.ensure_admin_schema(conn)
        tables: dict[str, Any] = {}
        cleans, exotic, rows = [], 0, 0
        for key in ("s", "v"):
            staging = Staging(plan, f"eq{key}", dry_run=False)
            sql = staging.entity_sql(entity, source, tables)
            assert vector_prepare.unsupported(sql, source) is None
            rows = await create_raw(conn, staging, entity, source)
            await conn.execute(sql.clean_ddl(temporary=False))
            if key == "s":
                await conn.execute(sql.prepare_sql(), 0, rows)
            else:
                result = await vector_prepare.copy_prepared(conn, sql, source, await source.columns(entity.source.file))
                assert result.rows == rows
                exotic = len(result.exotic)
                if result.exotic:
                    await conn.execute(sql.prepare_sql(rows=True), 0, rows, result.exotic)
            cleans.append(sql.clean)
        a, b = cleans
        assert await conn.fetchval(f"SELECT count(*) FROM {b}") == rows
        differ = await conn.fetchval(
            f"SELECT count(*) FROM ((TABLE {a} EXCEPT ALL TABLE {b}) UNION ALL (TABLE {b} EXCEPT ALL TABLE {a})) d"
        )
        return rows, exotic, int(differ)
    finally:
        await conn.close()


async def test_every_transform_and_rule_prepares_identically(make_target: Callable[..., Any], tmp_path: Path) -> None:
    values = EDGE_VALUES + _fuzz(random.Random(11), 2000)
    _write(tmp_path, "e.csv", ["k", "v"], [[f" k{i} ", v] for i, v in enumerate(values)] + [["", "no key"]])
    rows, exotic, differ = await _prepare_both(await make_target(), parse_plan(EDGE_PLAN), tmp_path)
    assert rows == len(values) + 1
    # non-ASCII values, digit-letter title cases (frequent in this fuzz) and over-long amounts go to SQL
    assert 0 < exotic < rows // 2
    assert differ == 0


async def test_quotes_inside_fields_are_read_as_copy_reads_them(
    make_target: Callable[..., Any], tmp_path: Path
) -> None:
    # COPY takes a quote anywhere in a field as opening a quoted part; Polars only at the field's start
    (tmp_path / "e.csv").write_text('k,v\n1,ab"c"d\n2,plain\n3,"x ""y"" z"\n4,"a, b"\n', encoding="utf-8")
    rows, exotic, differ = await _prepare_both(await make_target(), parse_plan(EDGE_PLAN), tmp_path)
    assert (rows, exotic, differ) == (4, 2, 0)


async def test_a_file_read_differently_is_prepared_by_sql(
    make_target: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # COPY reads lines 2 and 3 as one record (the quote opened on line 2 closes on line 3), Polars as two
    (tmp_path / "e.csv").write_text('k,v\n1,a"b\nc"d\n2,plain\n', encoding="utf-8")
    plan = parse_plan(EDGE_PLAN)
    dsn = await make_target()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE e (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, legacy_key text UNIQUE, "
            + ", ".join(f"{name} {spec.output_type}" for name, spec in plan.entities[0].fields.items())
            + ")"
        )
    finally:
        await conn.close()
    caplog.set_level(logging.WARNING, logger="migration_worker.engine")
    accounts = await MigrationEngine(plan, CsvFolderSource(tmp_path), dsn).run(str(uuid.uuid4()))
    assert accounts[0].source == 2
    assert accounts[0].unaccounted == 0
    assert any("preparing it by SQL" in r.getMessage() for r in caplog.records)


async def test_the_benchmark_plan_prepares_identically_on_dirty_data(
    make_target: Callable[..., Any], tmp_path: Path
) -> None:
    shipped = SHIPPED["legacy-notifications"]
    shipped.generate(tmp_path, 20_000, seed=5, dirty=0.05)
    rows, exotic, differ = await _prepare_both(await make_target(), load_plan(shipped.plan_file), tmp_path)
    assert rows == 20_000
    assert exotic < rows // 100
    assert differ == 0


@pytest.mark.parametrize("repeated_keys", [0, 25], ids=["distinct keys", "repeated keys"])
async def test_a_run_builds_the_same_target_either_way(
    make_target: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture, repeated_keys: int
) -> None:
    caplog.set_level(logging.INFO, logger="migration_worker.engine")
    shipped = SHIPPED["legacy-notifications"]
    shipped.generate(tmp_path, 3_000, seed=9, dirty=0.05)
    source_file = tmp_path / "notifications.csv"
    lines = source_file.read_text(encoding="utf-8").splitlines(keepends=True)
    # Rows again, later in the file: the unique-key probe fails and the duplicate search must find them.
    source_file.write_text("".join(lines + lines[100 : 100 + repeated_keys]), encoding="utf-8")
    plan = load_plan(shipped.plan_file)
    results = []
    for vectorised in (False, True):
        dsn = await make_target("legacy-notifications")
        engine = MigrationEngine(plan, CsvFolderSource(tmp_path), dsn, EngineOptions(vectorised=vectorised))
        accounts = await engine.run(str(uuid.uuid4()))
        results.append(([a.as_dict() for a in accounts], await target_checksum(dsn, plan)))
        by_sql = [r.getMessage() for r in caplog.records if "prepared by SQL" in r.getMessage()]
        assert by_sql == ([] if vectorised else ["notifications prepared by SQL: vectorising is off"])
        caplog.clear()
        duplicates = accounts[0].reasons.get("duplicate:legacy_key", 0)
        assert (0 < duplicates <= repeated_keys) if repeated_keys else duplicates == 0
        conn = await asyncpg.connect(dsn)
        try:  # the probe's index is gone whichever way it went
            assert await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%COLLATE \"C\"%'") == 0
        finally:
            await conn.close()
    (sql_accounts, sql_target), (vector_accounts, vector_target) = results
    assert vector_target == sql_target
    strip = {"seconds", "throughput"}
    assert [{k: v for k, v in a.items() if k not in strip} for a in vector_accounts] == [
        {k: v for k, v in a.items() if k not in strip} for a in sql_accounts
    ]


async def test_a_dry_run_finds_the_same_either_way(make_target: Callable[..., Any], tmp_path: Path) -> None:
    shipped = SHIPPED["legacy-notifications"]
    shipped.generate(tmp_path, 3_000, seed=6, dirty=0.05)
    reports = []
    for vectorised in (False, True):
        engine = MigrationEngine(
            load_plan(shipped.plan_file),
            CsvFolderSource(tmp_path),
            await make_target("legacy-notifications"),
            EngineOptions(vectorised=vectorised),
        )
        report = await engine.dry_run()
        reports.append({k: v for k, v in report.items() if not k.endswith(("_seconds", "_needed"))})
    assert reports[0]["rows_total"] == 3_000
    assert reports[1] == reports[0]


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("{from: v, transforms: [{regex_replace: ['a', 'b']}]}", "transform regex_replace"),
        ("{expr: \"v || 'x'\"}", "expression"),
    ],
)
def test_what_it_cannot_express_is_left_to_sql(field: str, reason: str, tmp_path: Path) -> None:
    plan = parse_plan(EDGE_PLAN.replace("raw: {from: v}", f"raw: {field}"))
    sql = Staging(plan, "x", dry_run=False).entity_sql(plan.entities[0], CsvFolderSource(tmp_path), {})
    assert reason in (vector_prepare.unsupported(sql, CsvFolderSource(tmp_path)) or "")
    assert vector_prepare.unsupported(sql, PostgresSource("postgresql://nowhere/x")) is not None


async def test_the_worker_setting_decides(settings: Settings, tmp_path: Path) -> None:
    plan_text = SHIPPED["legacy-notifications"].plan_file.read_text(encoding="utf-8")
    job = {"id": str(uuid.uuid4()), "plan_text": plan_text, "source_location": str(tmp_path), "target_dsn": "x"}
    for flag in (True, False):
        service = bootstrap(settings.model_copy(update={"vectorised_prepare": flag}))
        try:
            assert service._engine(job).options.vectorised is flag
        finally:
            await service.jobs.db.dispose()


async def test_a_file_copy_refuses_fails_the_run_with_its_reason(
    make_target: Callable[..., Any], tmp_path: Path
) -> None:
    # a row with an extra field: COPY refuses it while the Polars prepare is reading beside it
    shipped = SHIPPED["legacy-notifications"]
    shipped.generate(tmp_path, 2_000, seed=4)
    with (tmp_path / "notifications.csv").open("a", encoding="utf-8") as fh:
        fh.write("n-x,zw1,A B,0771234567,a@b.co,sms,hi,sent,2024-01-01 10:00:00,1.00,USD,extra\n")
    engine = MigrationEngine(
        load_plan(shipped.plan_file), CsvFolderSource(tmp_path), await make_target("legacy-notifications")
    )
    with pytest.raises(SourceError, match="cannot stage"):
        await engine.run(str(uuid.uuid4()))
