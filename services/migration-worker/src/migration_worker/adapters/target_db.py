"""The target PostgreSQL database: catalogue checks, the engine's bookkeeping schema, backups, offline mode.

The batch ledger (checkpoints) and the reject log live in the target database, in schema
`oneclass_migration`, because a checkpoint must commit in the same transaction as the rows it covers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from migration_worker.domain.plan import Plan
from migration_worker.domain.sqlgen import q

ADMIN = "oneclass_migration"
BACKUP = "oneclass_migration_backup"

ADMIN_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {ADMIN};
CREATE SCHEMA IF NOT EXISTS {BACKUP};
CREATE TABLE IF NOT EXISTS {ADMIN}.stages (
    job_id uuid NOT NULL, name text NOT NULL, rows bigint NOT NULL, staged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, name));
CREATE TABLE IF NOT EXISTS {ADMIN}.entity_runs (
    job_id uuid NOT NULL, entity text NOT NULL, source_rows bigint, max_row_no bigint, batch_count int, batch_size int,
    prepared_at timestamptz, loaded_at timestamptz, prepare_seconds double precision,
    PRIMARY KEY (job_id, entity));
CREATE TABLE IF NOT EXISTS {ADMIN}.batches (
    job_id uuid NOT NULL, entity text NOT NULL, batch_no int NOT NULL, lo bigint NOT NULL, hi bigint NOT NULL,
    migrated int NOT NULL, rejected int NOT NULL, merged int NOT NULL, warned int NOT NULL,
    worker text, committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, entity, batch_no));
CREATE TABLE IF NOT EXISTS {ADMIN}.rejects (
    job_id uuid NOT NULL, entity text NOT NULL, row_no bigint NOT NULL, stage text NOT NULL,
    reasons text[] NOT NULL, original jsonb NOT NULL, logged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, entity, row_no));
CREATE TABLE IF NOT EXISTS {ADMIN}.backups (
    job_id uuid NOT NULL, table_name text NOT NULL, backup_table text NOT NULL, row_count bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), restored_at timestamptz, PRIMARY KEY (job_id, table_name));
"""


class TargetError(RuntimeError):
    """The target cannot take this plan: missing table or column, no unique legacy key, unreachable."""


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: dict[str, str]  # column -> formatted type


async def connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise TargetError(f"cannot connect to the target database: {exc}") from exc


async def describe_tables(conn: asyncpg.Connection, schema: str, tables: list[str]) -> dict[str, TableInfo]:
    rows = await conn.fetch(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND a.attnum > 0 AND NOT a.attisdropped",
        schema,
        tables,
    )
    info: dict[str, dict[str, str]] = {}
    for table, column, typ in rows:
        info.setdefault(table, {})[column] = typ
    return {t: TableInfo(t, cols) for t, cols in info.items()}


async def check_target(conn: asyncpg.Connection, plan: Plan) -> dict[str, TableInfo]:
    """Every problem with the target, all at once, before anything is written."""
    schema = plan.target.schema_name
    tables = await describe_tables(conn, schema, plan.target_tables)
    problems: list[str] = []
    legacy = plan.target.legacy_key_column
    for entity in plan.entities:
        table = tables.get(entity.target_table)
        if table is None:
            problems.append(f"entity {entity.name}: target table {schema}.{entity.target_table} does not exist")
            continue
        for column in [legacy, *entity.fields]:
            if column not in table.columns:
                problems.append(f"entity {entity.name}: column {entity.target_table}.{column} does not exist")
        unique = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass($1) AND i.indisunique "
            "AND i.indnkeyatts = 1 AND a.attname = $2)",
            f"{q(schema)}.{q(entity.target_table)}",
            legacy,
        )
        if table and not unique:
            problems.append(f"entity {entity.name}: {entity.target_table}.{legacy} needs a unique index")
    for entity in plan.entities:
        for name, spec in entity.fields.items():
            if spec.reference:
                ref_table = tables.get(plan.entity(spec.reference).target_table)
                if ref_table and plan.target.id_column not in ref_table.columns:
                    problems.append(
                        f"entity {entity.name}: field {name} references {spec.reference}, whose table "
                        f"has no {plan.target.id_column} column"
                    )
    if problems:
        raise TargetError("the target database cannot take this plan:\n" + "\n".join(f"  - {p}" for p in problems))
    return tables


async def ensure_admin_schema(conn: asyncpg.Connection) -> None:
    # Replicas start together; the lock keeps concurrent CREATE ... IF NOT EXISTS from racing.
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('oneclass_migration.ddl'))")
        await conn.execute(ADMIN_DDL)


async def backup_tables(conn: asyncpg.Connection, job_id: str, plan: Plan) -> None:
    """Snapshot every target table the plan touches before the first write (once per job)."""
    schema = plan.target.schema_name
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"backup:{job_id}")
        for table in plan.target_tables:
            done = await conn.fetchval(
                f"SELECT 1 FROM {ADMIN}.backups WHERE job_id = $1 AND table_name = $2", job_id, table
            )
            if done:
                continue
            backup = f"b{job_id.replace('-', '')[:16]}_{table}"[:63]
            await conn.execute(f"DROP TABLE IF EXISTS {BACKUP}.{q(backup)}")
            await conn.execute(f"CREATE TABLE {BACKUP}.{q(backup)} AS TABLE {q(schema)}.{q(table)}")
            count = await conn.fetchval(f"SELECT count(*) FROM {BACKUP}.{q(backup)}")
            await conn.execute(
                f"INSERT INTO {ADMIN}.backups (job_id, table_name, backup_table, row_count) VALUES ($1, $2, $3, $4)",
                job_id,
                table,
                backup,
                count,
            )


async def restore_backups(conn: asyncpg.Connection, job_id: str, plan: Plan, retention_hours: float) -> dict[str, int]:
    schema = plan.target.schema_name
    rows = await conn.fetch(
        f"SELECT table_name, backup_table, row_count, now() - created_at > make_interval(secs => $2) AS expired "
        f"FROM {ADMIN}.backups WHERE job_id = $1",
        job_id,
        retention_hours * 3600,
    )
    if not rows:
        raise TargetError(f"job {job_id} has no backup to roll back to")
    if any(r["expired"] for r in rows):
        raise TargetError(f"the backup of job {job_id} is older than the {retention_hours:g} h retention window")
    by_table = {r["table_name"]: r for r in rows}
    restored: dict[str, int] = {}
    async with conn.transaction():
        tables = ", ".join(f"{q(schema)}.{q(t)}" for t in by_table)
        await conn.execute(f"TRUNCATE {tables}")
        for table in plan.target_tables:  # dependency order: parents first
            row = by_table[table]
            await conn.execute(
                f"INSERT INTO {q(schema)}.{q(table)} OVERRIDING SYSTEM VALUE "
                f"SELECT * FROM {BACKUP}.{q(row['backup_table'])}"
            )
            restored[table] = row["row_count"]
        await conn.execute(f"UPDATE {ADMIN}.backups SET restored_at = now() WHERE job_id = $1", job_id)
    return restored


@contextlib.asynccontextmanager
async def offline_mode(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Keep other users out of the target for the run and always let them back in afterwards."""
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f"REVOKE CONNECT ON DATABASE {q(database)} FROM PUBLIC")
    try:  # from the REVOKE on: terminating others can fail too (a role may not end a superuser's session)
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND usename <> current_user"
        )
        yield
    finally:
        await conn.execute(f"GRANT CONNECT ON DATABASE {q(database)} TO PUBLIC")
