from collections.abc import AsyncIterator

import pytest
from servicekit.db import Database
from servicekit.tables import metadata
from servicekit.testing import create_database, drop_database, unique_name
from sqlalchemy import text


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    """A fresh database with the messaging tables and one effect table for handlers to write."""
    name = unique_name("test_servicekit")
    url = await create_database(name)
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(text("CREATE TABLE effects (event_id uuid, note text)"))
    try:
        yield database
    finally:
        await database.dispose()
        await drop_database(name)
