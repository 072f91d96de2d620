"""Async SQLAlchemy engine on asyncpg, and transactional sessions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import JSON, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

OUTBOX_WRITTEN = "outbox_written"  # session.info flag set by outbox.add_event


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under a session, inside the session's transaction: for hot statements that gain
    from skipping SQLAlchemy's execute path. Only between the session's own statements, never concurrently."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's adapter sends BEGIN lazily, with its first statement: without one, a write through the
        # driver would commit on its own, outside the session's transaction.
        await connection.exec_driver_sql("SELECT 1")
    return driver


_inserts: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[bool, ...]]] = {}


def _insert_statement(table: Table, columns: tuple[str, ...]) -> tuple[str, tuple[bool, ...]]:
    key = (table.fullname, columns)
    if key not in _inserts:
        is_json = tuple(isinstance(table.c[name].type, JSON) for name in columns)
        values = ", ".join(f"${i}::text::jsonb" if j else f"${i}" for i, j in enumerate(is_json, start=1))
        names = ", ".join(f'"{name}"' for name in columns)
        _inserts[key] = (f'INSERT INTO "{table.fullname}" ({names}) VALUES ({values})', is_json)
    return _inserts[key]


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Plain INSERTs of complete rows (same keys in each) through the driver, in the session's transaction.

    For hot paths that write new rows and read nothing back: no unit of work, no statement compilation;
    JSON columns are serialised here and cast by PostgreSQL.
    """
    if not rows:
        return
    columns = tuple(rows[0])
    sql, is_json = _insert_statement(table, columns)
    args = [
        [json.dumps(row[c]) if j and row[c] is not None else row[c] for c, j in zip(columns, is_json, strict=True)]
        for row in rows
    ]
    connection = await driver_connection(session)
    if len(args) == 1:
        await connection.execute(sql, *args[0])
    else:
        await connection.executemany(sql, args)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, echo=echo
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._outbox_hooks: list[Callable[[], None]] = []

    def on_outbox_commit(self, hook: Callable[[], None]) -> None:
        """Call `hook` after every committed transaction that wrote outbox rows (wakes the relay)."""
        self._outbox_hooks.append(hook)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back on any exception."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.pop(OUTBOX_WRITTEN, False):
                for hook in self._outbox_hooks:
                    hook()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
