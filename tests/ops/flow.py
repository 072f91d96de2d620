"""What the ops tests do to a running system: place orders, and count their effects in the databases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import uuid4

import asyncpg
import httpx
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET

from tests.support.system import System

T = TypeVar("T")


def school_token() -> str:
    return issue_token(DEV_JWT_SECRET, sub="head@school", role="school_admin", school_id=uuid4())


def place_order(system: System, token: str) -> str | None:
    """The new order's id, or None when orders never took the request up.

    A stopping server refuses new connections, resets those still waiting in its listen backlog, and closes
    those whose request it had not begun: the client sees a refused or reset connection and knows it got no
    answer. Whether such a request was really left undone is for the caller to check (`order_ids`).
    Any HTTP error status fails: a request a service accepted must never end in a 5xx.
    """
    order = {
        "package_code": "growth",
        "student_count": 300,
        "add_ons": [],
        "payment_option": "split",
        "currency": "USD",
        "contact": {"name": "Head", "phone": f"+26377{uuid4().int % 10**7:07d}", "email": "head@school.example"},
    }
    try:
        response = httpx.post(
            f"{system.url('orders')}/api/v1/migration-services/orders",
            json=order,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return None
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _query(system: System, service: str, sql: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(system.databases[service].replace("+asyncpg", ""))
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def plans_per_order(system: System) -> dict[str, int]:
    rows = _query(system, "payments", "SELECT order_id::text AS id, count(*) AS n FROM payment_plans GROUP BY order_id")
    return {row["id"]: row["n"] for row in rows}


def order_ids(system: System) -> set[str]:
    return {row["id"] for row in _query(system, "orders", "SELECT id::text AS id FROM orders")}


def unpublished_outbox(system: System, service: str) -> int:
    return int(_query(system, service, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")[0]["n"])


def eventually(check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"not reached within {timeout}s; last value: {last!r}")
