"""Payments test fixtures: a migrated throwaway database, the provider sandbox, the app in-process, tokens."""

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import aio_pika
import httpx
import pytest
import uvicorn
from contracts.envelope import Envelope
from contracts.money import Money
from contracts.orders import Contact, OrderCreated
from payments.bootstrap import PaymentsApp, build
from payments.settings import Settings
from sandbox import RunningSandbox, SandboxSettings, sandbox_in_thread
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET
from servicekit.testing import (
    AMQP_URL,
    delete_namespace,
    free_port,
    migrated_database,
    unique_name,
)

ALEMBIC_INI = Path(__file__).parents[1] / "alembic.ini"
T = TypeVar("T")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningSandbox]:
    with sandbox_in_thread(SandboxSettings()) as running:
        yield running


@pytest.fixture
async def payments_db() -> AsyncIterator[str]:
    async with migrated_database("test_payments", ALEMBIC_INI) as url:
        yield url


def settings_for(db_url: str, namespace: str, sandbox: RunningSandbox, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "broker_namespace": namespace,
        "log_json": False,
        "outbox_poll_seconds": 0.2,
        "stripe_api_base": sandbox.base_url,
        "paynow_api_base": f"{sandbox.base_url}/paynow",
        "ecocash_api_base": f"{sandbox.base_url}/ecocash/v1",
        "webhook_worker_poll_s": 0.05,
        "scheduler_enabled": False,
        "provider_retries": 1,
        **overrides,
    }
    return Settings(**values)


class EventSpy:
    """A queue bound to everything payments publishes in the test namespace."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self.queue = queue
        self.seen: list[dict[str, Any]] = []

    async def drain(self) -> list[dict[str, Any]]:
        while True:
            message = await self.queue.get(no_ack=True, fail=False, timeout=5)
            if message is None:
                return self.seen
            self.seen.append(json.loads(message.body))

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.seen if e["event_type"] == event_type]

    async def wait_for(self, event_type: str, count: int = 1, attempts: int = 400) -> list[dict[str, Any]]:
        for _ in range(attempts):
            await self.drain()
            if len(self.of(event_type)) >= count:
                return self.of(event_type)
            await asyncio.sleep(0.025)
        raise AssertionError(f"expected {count} {event_type}, saw {len(self.of(event_type))}")


class PaymentsHarness:
    def __init__(self, app: PaymentsApp, client: httpx.AsyncClient, spy: EventSpy, sandbox: RunningSandbox):
        self.app = app
        self.runtime = app.runtime
        self.client = client
        self.spy = spy
        self.sandbox = sandbox
        self.base_url = str(client.base_url)
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Stop this instance gracefully (its port frees for the next one)."""
        await self.client.aclose()
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task
            self.server = None

    async def sandbox_call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.sandbox.base_url, timeout=10) as http:
            response = await http.request(method, path, **kwargs)
            response.raise_for_status()
            return response.json() if response.content else None

    async def publish(self, envelope: Envelope[Any]) -> None:
        await self.runtime.broker.publish(
            envelope.model_dump_json().encode(),
            exchange=self.runtime.naming.events_exchange,
            routing_key=envelope.routing_key,
            message_id=str(envelope.event_id),
            content_type="application/json",
        )

    async def order_created(self, **fields: Any) -> OrderCreated:
        order = make_order(**fields)
        await self.publish(Envelope.wrap(order, school_id=order.school_id))
        await self.spy.wait_for_plan(order.order_id)
        return order


def make_order(**fields: Any) -> OrderCreated:
    values: dict[str, Any] = {
        "order_id": uuid4(),
        "school_id": uuid4(),
        "package_code": "growth",
        "student_count": 450,
        "payment_option": "full",
        "total": Money(amount_minor=712_500, currency="USD"),
        "contact": Contact(name="Head Teacher", phone="+263771234567", email="head@school.example"),
        **fields,
    }
    return OrderCreated(**values)


async def _wait_for_plan(spy: EventSpy, order_id: UUID) -> dict[str, Any]:
    for _ in range(400):
        await spy.drain()
        for event in spy.of("payments.payment_plan_created"):
            if event["data"]["order_id"] == str(order_id):
                return event
        await asyncio.sleep(0.025)
    raise AssertionError(f"no payment plan for order {order_id}")


EventSpy.wait_for_plan = _wait_for_plan  # type: ignore[attr-defined]


async def _serve_on(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """The app on a real loopback port, so the sandbox can post webhooks to it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}"


@pytest.fixture
async def make_payments(
    payments_db: str, sandbox: RunningSandbox
) -> AsyncIterator[Callable[..., Awaitable[PaymentsHarness]]]:
    """Start payments (several times for the crash tests) on one database and broker namespace."""
    namespace = unique_name("t") + "."
    started: list[PaymentsHarness] = []
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    spy_queue = await channel.declare_queue(f"{namespace}spy", auto_delete=True)
    queues: list[str] = []
    port = free_port()
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        (await http.post("/_sandbox/reset")).raise_for_status()
        for provider in ("stripe", "paynow", "ecocash"):
            url = f"http://127.0.0.1:{port}/api/v1/payments/webhooks/{provider}"
            (await http.put(f"/_sandbox/callback-urls/{provider}", json={"url": url})).raise_for_status()

    async def start(**overrides: Any) -> PaymentsHarness:
        settings = settings_for(
            payments_db, namespace, sandbox, public_base_url=f"http://127.0.0.1:{port}", **overrides
        )
        payments_app = build(settings)
        server, task, base_url = await _serve_on(payments_app.create_app(), port)
        exchange = await channel.get_exchange(payments_app.runtime.naming.events_exchange)
        await spy_queue.bind(exchange, routing_key="payments.#")
        client = httpx.AsyncClient(base_url=base_url, timeout=30)
        harness = PaymentsHarness(payments_app, client, EventSpy(spy_queue), sandbox)
        harness.server, harness.task = server, task
        started.append(harness)
        queues.extend(q for q in payments_app.runtime.consumers.queue_names() if q not in queues)
        return harness

    try:
        yield start
    finally:
        for harness in reversed(started):
            await harness.stop()
        await connection.close()
        await delete_namespace(namespace, queues, Settings().retry_delays_ms)


@pytest.fixture
async def payments(make_payments: Callable[..., Awaitable[PaymentsHarness]]) -> PaymentsHarness:
    return await make_payments()


@pytest.fixture
def token() -> Callable[..., str]:
    def make(role: str = "school_admin", school_id: UUID | None = None, sub: str = "user-1") -> str:
        return issue_token(DEV_JWT_SECRET, sub=sub, role=role, school_id=school_id)  # type: ignore[arg-type]

    return make


@pytest.fixture
def admin(token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token('platform_admin', sub='admin-1')}"}


async def eventually(probe: Callable[[], Awaitable[T | None]], attempts: int = 400) -> T:
    for _ in range(attempts):
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.025)
    raise AssertionError("condition never became true")


async def first_installment(payments: PaymentsHarness, admin: dict[str, str], **order_fields: Any) -> dict[str, Any]:
    """A fresh order's plan; returns its first installment (with the order id beside it)."""
    order = await payments.order_created(**order_fields)
    plan = (await payments.client.get(f"/api/v1/payments/orders/{order.order_id}/plan", headers=admin)).json()
    return {**plan["installments"][0], "order_id": str(order.order_id), "school_id": str(order.school_id)}


async def checkout(
    payments: PaymentsHarness,
    admin: dict[str, str],
    installment: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    **body: Any,
) -> dict[str, Any]:
    """A checkout started for the installment (201 asserted); the answer with the installment beside it."""
    headers = {**admin, "Idempotency-Key": idempotency_key} if idempotency_key else admin
    response = await payments.client.post(
        f"/api/v1/payments/installments/{installment['id']}/checkout", json=body, headers=headers
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "installment": installment}


async def payment_status(
    payments: PaymentsHarness, admin: dict[str, str], payment_id: str, wanted: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (await payments.client.get(f"/api/v1/payments/{payment_id}", headers=admin)).json()
        return body if body["status"] == wanted else None

    try:
        return await eventually(probe)
    except AssertionError:
        last = (await payments.client.get(f"/api/v1/payments/{payment_id}", headers=admin)).json()
        raise AssertionError(f"payment never became {wanted}: {last}") from None


async def inbox(payments: PaymentsHarness, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await payments.client.get("/api/v1/payments/webhooks/inbox", headers=admin, params=params)
    ).json()
    return rows
