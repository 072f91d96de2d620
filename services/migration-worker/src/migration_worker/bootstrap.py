"""The one composition root: every entrypoint and every test builds the worker through here."""

from __future__ import annotations

from contracts.envelope import Payload
from contracts.migrations import DryRunCompleted, JobCompleted, JobFailed, JobProgress, JobScheduled, LoadBatch
from fastapi import FastAPI
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime

from migration_worker.adapters.jobstore import JobStore
from migration_worker.engine.progress import ProgressSink
from migration_worker.entrypoints.http.routes import pages, router
from migration_worker.entrypoints.messaging.scheduler import JobLoop
from migration_worker.entrypoints.messaging.subscriptions import subscriptions
from migration_worker.service_layer.batches import BatchWorker, MessageDispatch
from migration_worker.service_layer.handlers import MigrationService
from migration_worker.settings import Settings

PUBLISHES: list[type[Payload]] = [DryRunCompleted, JobProgress, JobCompleted, JobFailed, JobScheduled, LoadBatch]


def bootstrap(
    settings: Settings | None = None, *, db: Database | None = None, sinks: list[ProgressSink] | None = None
) -> MigrationService:
    """The use cases on their own (CLI, tests)."""
    settings = settings or Settings()
    database = db or Database(settings.database_url, pool_size=4)
    return MigrationService(settings=settings, jobs=JobStore(database), sinks=list(sinks or []))


def build_runtime(settings: Settings | None = None) -> tuple[ServiceRuntime, MigrationService, JobLoop]:
    """The long-running worker: start_job and load_batch consumers, outbox relay, job loop."""
    settings = settings or Settings()
    # A replica takes only as many batches as it loads at once, so the others get the rest.
    settings = settings.model_copy(update={"consumer_prefetch": min(settings.consumer_prefetch, settings.concurrency)})
    database = Database(settings.database_url, pool_size=6 + settings.concurrency)
    service = bootstrap(settings, db=database)
    batches = None
    if settings.batch_messages:
        service.dispatch = MessageDispatch(service.jobs, settings)
        batches = BatchWorker(service)
    loop = JobLoop(service)
    runtime = ServiceRuntime(
        settings, subscriptions=subscriptions(service, loop.wake, batches), publishes=PUBLISHES, db=database
    )
    runtime.on_startup.append(loop.start)
    runtime.on_shutdown.append(loop.stop)
    if batches is not None:
        runtime.on_shutdown.insert(0, batches.close)  # hooks run in reverse: the pools close last
    return runtime, service, loop


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime, service, _ = build_runtime(settings)
    app = runtime.create_app(title="OneClass migration worker", routers=[router, pages])
    app.state.migration_service = service
    app.state.runtime = runtime
    return app
