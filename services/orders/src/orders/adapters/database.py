"""The service's database handle: servicekit's Database, with every connection running as the app role."""

from __future__ import annotations

from typing import Any

from servicekit.db import Database
from sqlalchemy import event


def app_database(url: str, role: str, *, pool_size: int = 10) -> Database:
    db = Database(url, pool_size=pool_size)

    @event.listens_for(db.engine.sync_engine, "do_connect")
    def _as_app_role(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        # The role is a startup parameter of the connection, not a SET ROLE: it is the session's default, so
        # RESET ALL / RESET ROLE (the driver's reset after an error) return to it rather than to the login
        # user, and no request pays a round trip for it (a SET ROLE on every pool checkout did).
        params.setdefault("server_settings", {})["role"] = role

    return db
