"""Legacy data sources, streamed into PostgreSQL staging tables with COPY (never held in memory)."""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg

from migration_worker.domain.sqlgen import q


class SourceError(RuntimeError):
    """A source that cannot be read: missing folder or file, bad header, unreachable database."""


def column_name(header: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    return name if name and not name[0].isdigit() else f"c_{name}"


class Source(Protocol):
    typed: bool

    async def columns(self, relation: str) -> list[str]: ...

    async def stage(self, conn: asyncpg.Connection, relation: str, raw_table: str) -> int: ...

    def describe(self) -> str: ...


@dataclass
class CsvFolderSource:
    """A folder of CSV files with a header row; every column is staged as text."""

    folder: Path
    delimiter: str = ","
    encoding: str = "utf-8"
    typed: bool = False

    def _file(self, name: str) -> Path:
        path = self.folder / name
        if not self.folder.is_dir():
            raise SourceError(f"source folder {self.folder} does not exist or is not a folder")
        if not path.is_file():
            raise SourceError(f"source file {path} does not exist")
        return path

    async def columns(self, relation: str) -> list[str]:
        path = self._file(relation)
        try:
            with path.open(newline="", encoding=self.encoding) as fh:
                header = next(csv.reader(fh, delimiter=self.delimiter), None)
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot read {path}: {exc}") from exc
        if not header:
            raise SourceError(f"{path} is empty; a header row is required")
        names = [column_name(h) for h in header]
        if len(set(names)) != len(names):
            raise SourceError(f"{path}: header has duplicate columns after normalising: {names}")
        return names

    async def stage(self, conn: asyncpg.Connection, relation: str, raw_table: str) -> int:
        path = self._file(relation)
        columns = await self.columns(relation)
        schema, table = raw_table.split(".", 1)
        try:
            result = await conn.copy_to_table(
                table.strip('"'),
                schema_name=schema.strip('"'),
                source=path,
                columns=columns,
                format="csv",
                header=True,
                delimiter=self.delimiter,
                encoding=self.encoding.upper().replace("-", ""),
            )
        except (asyncpg.PostgresError, OSError) as exc:
            raise SourceError(f"cannot stage {path}: {exc}") from exc
        return int(result.split()[-1])

    def describe(self) -> str:
        return str(self.folder)


@dataclass
class PostgresSource:
    """A legacy PostgreSQL database; tables or queries are streamed with COPY ... TO STDOUT / FROM STDIN."""

    dsn: str
    typed: bool = True

    async def _connect(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(self.dsn, timeout=10)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise SourceError(f"cannot connect to the source database: {exc}") from exc

    @staticmethod
    def _query(relation: str) -> str:
        if relation.lstrip().lower().startswith(("select", "with")):
            return relation
        return f"SELECT * FROM {'.'.join(q(p) for p in relation.split('.'))}"

    async def columns(self, relation: str) -> list[str]:
        conn = await self._connect()
        try:
            stmt = await conn.prepare(f"SELECT * FROM ({self._query(relation)}) s LIMIT 0")
            return [a.name for a in stmt.get_attributes()]
        except asyncpg.PostgresError as exc:
            raise SourceError(f"cannot read {relation!r} from the source database: {exc}") from exc
        finally:
            await conn.close()

    async def column_types(self, relation: str) -> list[tuple[str, str]]:
        conn = await self._connect()
        try:
            rows = await conn.fetch(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                relation,
            )
            if rows:
                return [(r[0], r[1]) for r in rows]
            return [(c, "text") for c in await self.columns(relation)]
        finally:
            await conn.close()

    async def stage(self, conn: asyncpg.Connection, relation: str, raw_table: str) -> int:
        source = await self._connect()
        columns = await self.columns(relation)
        # Deterministic order, so a re-staged source numbers its rows exactly as before (resume).
        query = f"SELECT * FROM ({self._query(relation)}) s ORDER BY s::text"
        pipe: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)

        async def sink(chunk: bytes) -> None:
            await pipe.put(chunk)

        async def produce() -> None:
            try:
                await source.copy_from_query(query, output=sink, format="binary")
            finally:
                await pipe.put(None)

        async def chunks() -> AsyncIterator[bytes]:
            while (chunk := await pipe.get()) is not None:
                yield chunk

        schema, table = raw_table.split(".", 1)
        try:
            producer = asyncio.create_task(produce())
            result = await conn.copy_to_table(
                table.strip('"'), schema_name=schema.strip('"'), source=chunks(), columns=columns, format="binary"
            )
            await producer
        except asyncpg.PostgresError as exc:
            raise SourceError(f"cannot stage {relation!r}: {exc}") from exc
        finally:
            await source.close()
        return int(result.split()[-1])

    def describe(self) -> str:
        return "postgresql source"
