"""Shared request bodies and database peeks for the orders integration tests."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import httpx
from contracts.envelope import Envelope, Payload
from servicekit.topology import events_exchange
from sqlalchemy import text

BASE = "/api/v1/migration-services"
ORDERS = f"{BASE}/orders"
ORDER: dict[str, Any] = {
    "package_code": "growth",
    "student_count": 450,
    "add_ons": ["rush_migration"],
    "payment_option": "split",
    "currency": "USD",
    "contact": {"name": "Head Teacher", "phone": "+263771234567", "email": "head@school.example", "language": "en"},
}


async def system_rows(client: httpx.AsyncClient, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Read as the event consumers do (role `system`), through the app's own non-superuser connection."""
    async with client.app_runtime.db.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(text("SELECT set_config('app.role', 'system', true)"))
        return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]


async def outbox_events(client: httpx.AsyncClient, order_id: UUID | str) -> list[dict[str, Any]]:
    rows = await system_rows(
        client,
        "SELECT routing_key, body FROM outbox WHERE body->'data'->>'order_id' = :id ORDER BY created_at, id",
        id=str(order_id),
    )
    return rows


async def deliver(client: httpx.AsyncClient, payload: Payload, school_id: UUID | None = None) -> None:
    """Publish an event on the real broker, as its producer would, for the orders consumers to pick up."""
    runtime = client.app_runtime  # type: ignore[attr-defined]
    envelope = Envelope.wrap(payload, school_id=school_id)
    await runtime.broker.publish(
        envelope.model_dump_json(),
        exchange=events_exchange(runtime.naming),
        routing_key=envelope.routing_key,
        message_id=str(envelope.event_id),
        content_type="application/json",
        persist=True,
    )


async def eventually(check: Callable[[], Awaitable[Any]], attempts: int = 100) -> Any:
    """Poll until `check` returns something truthy (consumers run asynchronously)."""
    for _ in range(attempts):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")
