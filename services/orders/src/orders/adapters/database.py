"""The service's database handle: servicekit's Database, with every connection running as the app role."""

from __future__ import annotations

from typing import Any

from servicekit.db import Database
from sqlalchemy import event


def app_database(url: str, role: str, *, pool_size: int = 10) -> Database:
    db = Database(url, pool_size=pool_size)

    @event.listens_for(db.engine.sync_engine, "connect")
    def _become_app_role(dbapi_connection: Any, _record: Any) -> None:
        # SET ROLE is session-wide and survives transaction ends, so it is done once per physical connection.
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET ROLE "{role}"')
        cursor.close()

    return db
