"""The one composition root: every entrypoint and every test builds the worker through here."""

from __future__ import annotations

from servicekit.db import Database

from migration_worker.adapters.jobstore import JobStore
from migration_worker.engine.progress import ProgressSink
from migration_worker.service_layer.handlers import MigrationService
from migration_worker.settings import Settings


def bootstrap(
    settings: Settings | None = None, *, db: Database | None = None, sinks: list[ProgressSink] | None = None
) -> MigrationService:
    settings = settings or Settings()
    database = db or Database(settings.database_url, pool_size=4)
    return MigrationService(settings=settings, jobs=JobStore(database), sinks=list(sinks or []))
