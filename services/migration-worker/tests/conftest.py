"""Migration-worker fixtures: throwaway target and worker databases on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from migration_worker.bootstrap import bootstrap
from migration_worker.plans import SHIPPED
from migration_worker.service_layer.handlers import MigrationService
from migration_worker.settings import Settings
from servicekit.testing import create_database, database_url, drop_database, migrated_database, unique_name

ALEMBIC_INI = Path(__file__).parents[1] / "alembic.ini"


@pytest.fixture
async def make_target() -> AsyncIterator[Callable[[str | None], object]]:
    """Factory of empty target databases, optionally with a shipped plan's tables; all dropped after."""
    names: list[str] = []

    async def make(plan_name: str | None = None) -> str:
        name = unique_name("test_migtarget")
        names.append(name)
        await create_database(name)
        dsn = database_url(name, driver="postgresql")
        if plan_name:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(SHIPPED[plan_name].target_ddl)
            finally:
                await conn.close()
        return dsn

    yield make  # type: ignore[misc]
    for name in names:
        await drop_database(name)


@pytest.fixture
async def worker_db() -> AsyncIterator[str]:
    async with migrated_database("test_migworker", ALEMBIC_INI) as url:
        yield url


@pytest.fixture
def settings(worker_db: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=worker_db, log_dir=str(tmp_path / "log"), log_json=False, concurrency=2, outbox_enabled=False
    )


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[MigrationService]:
    svc = bootstrap(settings)
    try:
        yield svc
    finally:
        await svc.jobs.db.dispose()
