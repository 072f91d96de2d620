"""The service defaults every service composes: database, broker, consumers, outbox relay, HTTP app.

A service's `bootstrap.py` builds one `ServiceRuntime` with its own settings, subscriptions and
routers; its HTTP entrypoint, its tests and its CLI all go through that one composition root.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from contracts.envelope import Envelope, Payload
from contracts.routing import published_by
from fastapi import APIRouter, FastAPI, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from servicekit import metrics
from servicekit.auth import TokenVerifier
from servicekit.broker import build_broker
from servicekit.consumer import ConsumerRuntime, Subscription
from servicekit.db import Database
from servicekit.problems import BodySizeLimit, install_problem_handlers
from servicekit.relay import OutboxRelay
from servicekit.settings import ServiceSettings
from servicekit.telemetry import setup_logging, setup_tracing
from servicekit.topology import Naming, declare_exchanges, declare_subscription_topology, events_exchange

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
_UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in _UNTRACED_PATHS


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        subscriptions: Sequence[Subscription[Any]] = (),
        publishes: Sequence[type[Payload]] | None = None,
        db: Database | None = None,
        configure_logging: bool = True,
    ) -> None:
        self.settings = settings
        if configure_logging:
            setup_logging(settings)
        self.tracer_provider = setup_tracing(settings)
        self.db = db or Database(settings.database_url)
        self.naming = Naming(settings.broker_namespace)
        self.registry = CollectorRegistry()
        self.broker = build_broker(settings, tracer_provider=self.tracer_provider, registry=self.registry)
        self.consumers = ConsumerRuntime(
            self.broker,
            self.db,
            self.naming,
            retry_delays_ms=settings.retry_delays_ms,
            delivery_limit=settings.delivery_limit,
            max_batch=settings.consumer_batch_max,
        )
        self.consumers.register(list(subscriptions))
        self.publishes = list(published_by(settings.service_name) if publishes is None else publishes)
        for message in self.publishes:  # declared for the AsyncAPI document; the relay does the publishing
            self.broker.publisher(
                exchange=events_exchange(self.naming),
                routing_key=message.routing_key(),
                title=message.routing_key(),
                description=(message.__doc__ or "").strip() or None,
                schema=Envelope[message],  # type: ignore[valid-type]
            )
        self.relay = OutboxRelay(
            self.db,
            dsn=settings.database_dsn,
            amqp_url=settings.amqp_url,
            exchange=self.naming.events_exchange,
            app_id=settings.service_name,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
            linger_seconds=settings.outbox_linger_ms / 1000,
        )
        self.on_startup: list[Hook] = []
        self.on_shutdown: list[Hook] = []
        self.started = False

    async def start(self) -> None:
        await self.broker.connect()
        await declare_exchanges(self.broker, self.naming)
        for queue in self.consumers.queue_names():
            await declare_subscription_topology(self.broker, self.naming, queue, self.settings.retry_delays_ms)
        await self.broker.start()
        if self.settings.outbox_enabled:
            await self.relay.start()
        for hook in self.on_startup:
            await hook()
        self.started = True
        log.info("%s started", self.settings.service_name)

    async def stop(self) -> None:
        """Stop taking messages, finish in-flight ones, flush the outbox and telemetry."""
        for hook in reversed(self.on_shutdown):
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        # Subscribers first (no new messages; in-flight handlers finish within the broker's graceful timeout),
        # then the relay publishes what they and the HTTP requests committed while the connection is still
        # open, and only then is the connection closed.
        for subscriber in self.broker.subscribers:
            await subscriber.stop()
        await self.consumers.stop()
        if self.settings.outbox_enabled:
            await self.relay.stop()
        await self.broker.stop()
        await self.db.dispose()
        self.tracer_provider.shutdown()
        self.started = False
        log.info("%s stopped", self.settings.service_name)

    async def ready(self) -> dict[str, bool]:
        return {"database": await self.db.ping(), "broker": await self.broker.ping(timeout=2.0)}

    async def render_metrics(self) -> bytes:
        try:
            backlog, age = await self.relay.backlog()
            metrics.OUTBOX_BACKLOG.set(backlog)
            metrics.OUTBOX_OLDEST_AGE.set(age)
        except Exception:
            log.warning("outbox backlog unavailable for metrics")
        return generate_latest(REGISTRY) + generate_latest(self.registry)

    def create_app(self, *, title: str, routers: Sequence[APIRouter] = (), version: str = "1.0.0") -> FastAPI:
        runtime = self

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

        # FastAPI's own OpenTelemetry support: one server span per request (named "POST /route") on this
        # runtime's provider. Not the contrib instrumentor: it also made a span for every ASGI send/receive,
        # and that tripled the cost of a small request. Per-operation spans, OTel metrics and OTel logs
        # stay off: Prometheus and the JSON logs cover those.
        telemetry: TelemetryConfig = {
            "tracer_provider": self.tracer_provider,
            "operation_spans": False,
            "metrics": False,
            "logs": False,
            "exclude": _untraced,
        }
        app = FastAPI(title=title, version=version, lifespan=lifespan, telemetry=telemetry)
        app.state.runtime = self
        app.state.token_verifier = TokenVerifier(self.settings)
        install_problem_handlers(app)
        app.include_router(self.operations_router())
        for router in routers:
            app.include_router(router)
        app.add_middleware(BodySizeLimit, max_bytes=self.settings.max_body_bytes)
        return app

    def operations_router(self) -> APIRouter:
        router = APIRouter(tags=["operations"])

        @router.get("/healthz", summary="Liveness")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @router.get("/readyz", summary="Readiness: database and broker reachable")
        async def readyz(response: Response) -> dict[str, Any]:
            checks = await self.ready()
            ok = all(checks.values())
            response.status_code = 200 if ok else 503
            return {"status": "ok" if ok else "unavailable", "checks": checks}

        @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
        async def metrics_endpoint() -> Response:
            return Response(await self.render_metrics(), media_type=CONTENT_TYPE_LATEST)

        return router


def _uvicorn_options(settings: ServiceSettings) -> dict[str, Any]:
    return {
        "host": settings.http_host,
        "port": settings.http_port,
        "log_config": None,
        # A JSON log line per request cost about half the requests/s of a small endpoint; the request
        # spans say the same, and HTTP_ACCESS_LOG=true brings the lines back when wanted.
        "access_log": settings.http_access_log,
        "timeout_graceful_shutdown": 20,
        "proxy_headers": False,
    }


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the HTTP app; uvicorn turns SIGTERM into a graceful lifespan shutdown."""
    import signal

    import uvicorn

    # uvicorn re-raises the signal it caught once its graceful shutdown is done, which would end the process
    # "killed by SIGTERM"; with a no-op handler behind it, a graceful stop exits 0 as orchestrators expect.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, **_uvicorn_options(settings))


def serve_service(factory: str, settings: ServiceSettings) -> None:
    """A service's entrypoint: one process, or `settings.http_workers` worker processes each a whole replica."""
    if settings.http_workers > 1:
        serve_workers(factory, settings)
        return
    module, _, name = factory.partition(":")
    create_app: Callable[[ServiceSettings], FastAPI] = getattr(importlib.import_module(module), name)
    serve(create_app(settings), settings)


def serve_workers(factory: str, settings: ServiceSettings) -> None:
    """Run `settings.http_workers` uvicorn worker processes on the one port, each a whole replica.

    `factory` names the app factory ("package.bootstrap:create_app"); every worker builds its own runtime
    (database pool, broker connection, consumers, relay), exactly as separate replicas would.
    """
    import uvicorn

    uvicorn.run(factory, factory=True, workers=settings.http_workers, **_uvicorn_options(settings))
