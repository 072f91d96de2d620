"""The one composition root of the payments service: HTTP app, consumers, relay and background work."""

from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from servicekit.runtime import ServiceRuntime

from payments.adapters.providers.registry import Providers
from payments.adapters.webhook_inbox import WebhookInbox
from payments.background import Scheduler, WebhookWorker
from payments.entrypoints.http.routes import payments, plans, webhooks
from payments.entrypoints.messaging.subscriptions import SUBSCRIPTIONS
from payments.settings import Settings

TITLE = "OneClass payments"


@dataclass
class PaymentsApp:
    settings: Settings
    runtime: ServiceRuntime
    providers: Providers
    inbox: WebhookInbox
    worker: WebhookWorker
    scheduler: Scheduler

    def create_app(self) -> FastAPI:
        app = self.runtime.create_app(title=TITLE, routers=routers())
        app.state.payments = self
        return app


def routers() -> list[APIRouter]:
    # webhooks before payments: its fixed paths (/webhooks/inbox, /noop) must win over /{payment_id}.
    return [plans.router, webhooks.router, payments.router]


def build(settings: Settings | None = None) -> PaymentsApp:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings, subscriptions=SUBSCRIPTIONS)
    providers = Providers(settings)
    inbox = WebhookInbox(settings.database_dsn, pool_size=settings.webhook_intake_pool_size)
    runtime.on_startup.append(inbox.start)
    runtime.on_shutdown.append(inbox.close)
    worker = WebhookWorker(runtime.db, providers, settings)
    scheduler = Scheduler(runtime.db, providers, settings)
    if settings.webhook_worker_enabled:
        runtime.on_startup.append(worker.start)
        runtime.on_shutdown.append(worker.stop)
    if settings.scheduler_enabled:
        runtime.on_startup.append(scheduler.start)
        runtime.on_shutdown.append(scheduler.stop)
    runtime.on_shutdown.append(providers.close)
    return PaymentsApp(settings, runtime, providers, inbox, worker, scheduler)


def build_runtime(settings: Settings | None = None) -> ServiceRuntime:
    return build(settings).runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    return build(settings).create_app()
