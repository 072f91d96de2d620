"""Test helpers: table checksums that do not depend on surrogate ids or load order."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
from migration_worker.adapters.sources import CsvFolderSource
from migration_worker.domain.plan import Plan
from migration_worker.domain.sqlgen import q
from migration_worker.engine.engine import EngineOptions, MigrationEngine


async def target_checksum(dsn: str, plan: Plan) -> dict[str, tuple[int, str]]:
    """Per target table: row count and an md5 over every migrated column, with foreign keys replaced
    by the referenced row's legacy key (new ids depend on commit order, the content must not)."""
    conn = await asyncpg.connect(dsn)
    try:
        result = {}
        for entity in plan.entities:
            cols = ["t.legacy_key"]
            joins = []
            for name, spec in entity.fields.items():
                if spec.reference:
                    ref = plan.entity(spec.reference)
                    alias = q(f"r_{name}")
                    joins.append(f"LEFT JOIN {q(ref.target_table)} {alias} ON {alias}.id = t.{q(name)}")
                    cols.append(f"{alias}.legacy_key")
                else:
                    cols.append(f"t.{q(name)}")
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(row({', '.join(cols)})::text, '|' "
                f"ORDER BY t.legacy_key), '')) AS h FROM {q(entity.target_table)} t {' '.join(joins)}"
            )
            result[entity.target_table] = (row["n"], row["h"])
        return result
    finally:
        await conn.close()


async def count(dsn: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def reference_checksum(plan: Plan, source: Path, dsn: str) -> dict[str, tuple[int, str]]:
    """The target one in-process worker builds from `source` into the empty target `dsn`."""
    await MigrationEngine(plan, CsvFolderSource(source), dsn, EngineOptions(concurrency=1)).run(str(uuid.uuid4()))
    return await target_checksum(dsn, plan)
