"""The body of every service's Alembic `env.py`: async engine, URL from settings or the caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from servicekit.tables import metadata as messaging_metadata


def run_migrations(target_metadata: Sequence[MetaData], default_url: str) -> None:
    """Call from env.py. `-x url=...` or the config's sqlalchemy.url win over the settings' URL."""
    config = context.config
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    url = url or default_url
    metadatas = [*target_metadata, messaging_metadata]
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadatas, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=metadatas, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


def upgrade(alembic_ini: Path, url: str, revision: str = "head") -> None:
    """Apply a service's migrations to the database at `url` (used by tests and `make run`)."""
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)


async def upgrade_async(alembic_ini: Path, url: str, revision: str = "head") -> None:
    """`upgrade` from async code: env.py runs its own event loop, so it goes to a thread."""
    await asyncio.to_thread(upgrade, alembic_ini, url, revision)
