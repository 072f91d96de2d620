"""Notifications test fixtures: a migrated throwaway database, the provider sandbox, a running service."""

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import httpx
import pytest
import uvicorn
from contracts.envelope import Envelope, Payload
from faststream.rabbit import RabbitQueue
from notifications.bootstrap import ROUTERS, Components, build
from notifications.settings import Settings
from sandbox import RunningSandbox, SandboxSettings, sandbox_in_thread
from servicekit.alembic_env import upgrade_async
from servicekit.auth import issue_token
from servicekit.outbox import add_event
from servicekit.runtime import ServiceRuntime
from servicekit.settings import DEV_JWT_SECRET
from servicekit.testing import create_database, delete_namespace, delete_queues, drop_database, unique_name
from servicekit.topology import events_exchange

ALEMBIC_INI = Path(__file__).parents[2] / "alembic.ini"
T = TypeVar("T")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_in_thread(SandboxSettings()) as running:
        yield running


@pytest.fixture
async def sandbox_http(sandbox: RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.base_url, timeout=10) as http:
        (await http.post("/_sandbox/reset")).raise_for_status()
        yield http


@pytest.fixture
async def notifications_db() -> AsyncIterator[str]:
    name = unique_name("test_notifications")
    url = await create_database(name)
    await upgrade_async(ALEMBIC_INI, url)
    try:
        yield url
    finally:
        await drop_database(name)


def settings_for(db_url: str, sandbox: RunningSandbox, namespace: str, **overrides: Any) -> Settings:
    base = sandbox.base_url
    values: dict[str, Any] = {
        "database_url": db_url,
        "broker_namespace": namespace,
        "log_json": False,
        "retry_delays_ms": [150],
        "outbox_poll_seconds": 0.2,
        "telone_base_url": f"{base}/telone/v1",
        "econet_base_url": f"{base}/econet/v1",
        "generic_sms_base_url": f"{base}/generic/sms",
        "whatsapp_base_url": f"{base}/whatsapp/v19.0",
        "smtp_host": sandbox.smtp_host,
        "smtp_port": sandbox.smtp_port,
        "dispatcher_poll_seconds": 0.1,
        "dispatch_retry_delays_s": [0.1, 0.2],
        "provider_timeout_s": 2.0,
        "allow_private_targets": True,
        **overrides,
    }
    return Settings(**values)


class Service:
    """A running notifications service (consumers, relay, dispatcher) with an in-process HTTP client."""

    def __init__(self, runtime: ServiceRuntime, components: Components, client: httpx.AsyncClient) -> None:
        self.runtime, self.components, self.client = runtime, components, client

    async def publish(
        self, payload: Payload, *, school_id: UUID | None = None, event_id: UUID | None = None
    ) -> Envelope[Any]:
        """Publish an event as its producer would: through an outbox (ours), relayed to the broker."""
        envelope = Envelope.wrap(payload, school_id=school_id, event_id=event_id)
        await self.publish_envelope(envelope)
        return envelope

    async def publish_envelope(self, envelope: Envelope[Any]) -> None:
        await self.runtime.broker.publish(
            envelope.model_dump_json().encode(),
            exchange=events_exchange(self.runtime.naming),
            routing_key=envelope.routing_key,
            message_id=str(envelope.event_id),
            content_type="application/json",
            persist=True,
        )

    async def add_outbox(self, envelope: Envelope[Any]) -> None:
        async with self.runtime.db.transaction() as session:
            await add_event(session, envelope)

    async def scalar(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import text

        async with self.runtime.db.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        async with self.runtime.db.engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).mappings().all())


ServiceFactory = Callable[..., Awaitable[Service]]


def _sink_name(runtime: ServiceRuntime) -> str:
    return f"{runtime.settings.broker_namespace}test-sink.notifications"


async def _bind_sink(runtime: ServiceRuntime) -> None:
    """Stands in for the services that consume notifications' own events (publishes are `mandatory`)."""
    queue = await runtime.broker.declare_queue(RabbitQueue(_sink_name(runtime), auto_delete=False))
    exchange = await runtime.broker.declare_exchange(events_exchange(runtime.naming))
    for key in (
        "notifications.notification_sent.v1",
        "notifications.notification_failed.v1",
        "notifications.notification_delivered.v1",
    ):
        await queue.bind(exchange, routing_key=key)


@pytest.fixture
async def service_factory(notifications_db: str, sandbox: RunningSandbox) -> AsyncIterator[ServiceFactory]:
    """Start one or more replicas sharing one database, broker namespace and Redis quota."""
    namespace = unique_name("tn") + "."
    started: list[Service] = []
    stacks: list[Any] = []

    async def start(*, listen: bool = False, **overrides: Any) -> Service:
        """`listen` also serves the app on a real port, for providers' callbacks (delivery reports)."""
        sock = None
        if listen:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            overrides["public_base_url"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = settings_for(notifications_db, sandbox, namespace, **overrides)
        runtime, components = build(settings)
        app = runtime.create_app(title="notifications", routers=ROUTERS)
        app.state.components = components
        await runtime.start()
        if not started:
            await _bind_sink(runtime)
        if sock is not None:
            server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
            task = asyncio.create_task(server.serve(sockets=[sock]))
            servers.append((server, task, sock))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifications")
        stacks.append(client)
        service = Service(runtime, components, client)
        started.append(service)
        return service

    servers: list[tuple[uvicorn.Server, asyncio.Task[None], socket.socket]] = []
    try:
        yield start
    finally:
        for server, task, sock in servers:
            server.should_exit = True
            await task
            sock.close()
        for service in reversed(started):
            await service.client.aclose()
            await service.runtime.stop()
        if started:
            runtime = started[0].runtime
            await delete_queues([_sink_name(runtime)])
            await delete_namespace(namespace, runtime.consumers.queue_names(), runtime.settings.retry_delays_ms)


@pytest.fixture
async def service(service_factory: ServiceFactory) -> Service:
    return await service_factory()


@pytest.fixture
def token() -> Callable[..., str]:
    def make(role: str = "platform_admin", school_id: UUID | None = None, sub: str = "user-1") -> str:
        return issue_token(DEV_JWT_SECRET, sub=sub, role=role, school_id=school_id)  # type: ignore[arg-type]

    return make


@pytest.fixture
def school_id() -> UUID:
    return uuid4()


async def eventually(probe: Callable[[], Awaitable[T | None]], *, attempts: int = 300, pause: float = 0.05) -> T:
    """Poll until `probe` returns something truthy (messages travel through the broker and dispatcher)."""
    last: T | None = None
    for _ in range(attempts):
        last = await probe()
        if last:
            return last
        await asyncio.sleep(pause)
    raise AssertionError(f"condition never became true (last: {last!r})")
