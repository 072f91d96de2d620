"""The service's database handle: servicekit's Database, with every connection running as the app role."""

from __future__ import annotations

from typing import Any

from servicekit.db import Database
from sqlalchemy import event


def app_database(url: str, role: str, *, pool_size: int = 10) -> Database:
    db = Database(url, pool_size=pool_size)

    @event.listens_for(db.engine.pool, "checkout")
    def _become_app_role(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # On every checkout, not once per connection: the driver's reset after an error resets the role too.
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET ROLE "{role}"')
        cursor.close()

    return db
