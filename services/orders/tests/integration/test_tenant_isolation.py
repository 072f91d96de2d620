"""Every endpoint, as every role, against another tenant's data: refused with 403/404, nothing leaks.

Then the same with the application's own filters switched off: PostgreSQL row-level security still hides it.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from orders.service_layer import access
from orders.service_layer import orders as order_use_cases
from sqlalchemy import text, true
from sqlalchemy.exc import DBAPIError

from ..conftest import bearer
from .helpers import BASE, ORDER, ORDERS, system_rows

pytestmark = pytest.mark.integration

ADMIN = bearer("platform_admin", sub="admin-iso")


@dataclass
class Tenants:
    school_a: UUID
    school_b: UUID
    order_a: str
    order_b: str
    task_b: str
    milestone_b: str
    quote_b: str


@pytest.fixture(scope="module")
async def tenants(app_client: httpx.AsyncClient) -> Tenants:
    a, b = uuid4(), uuid4()
    order_a = (await app_client.post(ORDERS, json=ORDER, headers=bearer(school_id=a))).json()["id"]
    order_b = (await app_client.post(ORDERS, json=ORDER, headers=bearer(school_id=b))).json()["id"]
    for oid, member in ((order_a, "tm-a"), (order_b, "tm-b")):
        await app_client.patch(f"{ORDERS}/{oid}/status", json={"status": "approved"}, headers=ADMIN)
        await app_client.post(f"{ORDERS}/{oid}/team", json={"members": [member]}, headers=ADMIN)
    task_b = (await app_client.post(f"{ORDERS}/{order_b}/tasks", json={"title": "B's task"}, headers=ADMIN)).json()
    milestones_b = (await app_client.get(f"{ORDERS}/{order_b}/milestones", headers=ADMIN)).json()
    pg = {"kind": "postgres", "name": "B's SIS", "dsn": "postgresql://b@db/b"}
    assert (await app_client.post(f"{ORDERS}/{order_b}/data-sources", json=pg, headers=ADMIN)).status_code == 201
    quote_b = await app_client.post(
        f"{BASE}/quotes", json={"student_count": 300, "payment_option": "full"}, headers=bearer(school_id=b)
    )
    return Tenants(a, b, order_a, order_b, task_b["id"], milestones_b[0]["id"], quote_b.json()["id"])


def requests(t: Tenants) -> list[tuple[str, str, dict[str, Any] | None]]:
    o, b = f"{ORDERS}/{t.order_b}", t.school_b
    return [
        ("GET", o, None),
        ("PUT", o, {"notes": "mine now"}),
        ("PATCH", f"{o}/status", {"status": "cancelled", "reason": "x"}),
        ("POST", f"{o}/team", {"members": ["intruder"]}),
        ("GET", f"{o}/tasks", None),
        ("POST", f"{o}/tasks", {"title": "intrude"}),
        ("GET", f"{o}/milestones", None),
        ("PATCH", f"{o}/milestones/{t.milestone_b}", {"status": "completed"}),
        ("GET", f"{o}/data-sources", None),
        ("POST", f"{o}/data-sources", {"kind": "postgres", "name": "x", "dsn": "postgresql://x@y/z"}),
        ("PUT", f"{BASE}/tasks/{t.task_b}", {"status": "done"}),
        ("GET", f"{BASE}/quotes/{t.quote_b}", None),
        ("POST", ORDERS, {**ORDER, "school_id": str(b)}),
        ("POST", f"{BASE}/quotes", {"student_count": 300, "payment_option": "full", "school_id": str(b)}),
        ("GET", f"{BASE}/dashboard", None),
        ("GET", f"{BASE}/analytics?from=2000-01-01&to=2100-01-01", None),
        ("GET", f"{BASE}/team-performance", None),
        ("GET", f"{BASE}/audit?entity=order&id={t.order_b}", None),
        (
            "POST",
            f"{BASE}/care-packages",
            {"code": "growth", "name": "x", "price_minor": 1, "min_students": 1, "base_timeline_days": 1},
        ),
        ("PUT", f"{BASE}/care-packages/growth", {"price_minor": 1}),
        ("POST", f"{BASE}/exchange-rates", {"currency": "ZWL", "rate": "1", "effective_date": "2001-01-01"}),
    ]


ROLES = {
    "school_admin_of_a": lambda t: bearer("school_admin", school_id=t.school_a, sub="sa-a"),
    "team_member_of_a": lambda t: bearer("team_member", sub="tm-a"),
}


@pytest.mark.parametrize("role", list(ROLES))
async def test_every_endpoint_refuses_another_tenants_data(
    app_client: httpx.AsyncClient, tenants: Tenants, role: str
) -> None:
    headers = ROLES[role](tenants)
    before = await _b_state(app_client, tenants)
    for method, url, body in requests(tenants):
        response = await app_client.request(method, url, json=body, headers=headers)
        assert response.status_code in (403, 404), (role, method, url, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert str(tenants.school_b) not in response.text
    assert await _b_state(app_client, tenants) == before


@pytest.mark.parametrize("role", list(ROLES))
async def test_lists_show_only_what_the_role_may_see(
    app_client: httpx.AsyncClient, tenants: Tenants, role: str
) -> None:
    listed = await app_client.get(ORDERS, headers=ROLES[role](tenants))
    ids = {o["id"] for o in listed.json()["items"]}
    assert ids == {tenants.order_a}


async def test_the_platform_admin_sees_both_tenants(app_client: httpx.AsyncClient, tenants: Tenants) -> None:
    for oid in (tenants.order_a, tenants.order_b):
        assert (await app_client.get(f"{ORDERS}/{oid}", headers=ADMIN)).status_code == 200


async def test_a_forgotten_filter_still_leaks_nothing(
    app_client: httpx.AsyncClient, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate a developer forgetting the tenant filter everywhere: the database must still refuse.
    monkeypatch.setattr(access, "order_visible", lambda actor: true())
    monkeypatch.setattr(order_use_cases, "order_visible", lambda actor: true())
    headers = bearer("school_admin", school_id=tenants.school_a, sub="sa-a")
    assert (await app_client.get(f"{ORDERS}/{tenants.order_b}", headers=headers)).status_code == 404
    assert (await app_client.get(f"{ORDERS}/{tenants.order_b}/tasks", headers=headers)).status_code == 404
    listed = (await app_client.get(ORDERS, headers=headers)).json()
    assert {o["id"] for o in listed["items"]} == {tenants.order_a}
    member = bearer("team_member", sub="tm-a")
    assert (await app_client.get(f"{ORDERS}/{tenants.order_b}", headers=member)).status_code == 404


async def test_row_level_security_on_every_tenant_table(app_client: httpx.AsyncClient, tenants: Tenants) -> None:
    engine = app_client.app_runtime.db.engine  # type: ignore[attr-defined]
    tables = ["orders", "quotes", "tasks", "milestones", "data_sources", "installment_payments", "audit_log"]
    async with engine.begin() as conn:
        role = await conn.execute(text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"))
        assert role.one() == (False, False)
        # No tenant context at all: nothing is visible.
        for table in [*tables, "order_milestone_stats"]:
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
        await conn.execute(
            text("SELECT set_config('app.role', 'school_admin', true), set_config('app.school_id', :s, true)"),
            {"s": str(tenants.school_a)},
        )
        for table in tables[:-1]:
            leaked = await conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE school_id = :b"), {"b": tenants.school_b}
            )
            assert leaked.scalar_one() == 0, table
        assert (await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one() == 1
        counters_b = text("SELECT count(*) FROM order_milestone_stats WHERE order_id = :o")
        assert (await conn.execute(counters_b, {"o": UUID(tenants.order_b)})).scalar_one() == 0
        changed = await conn.execute(
            text("UPDATE orders SET notes = 'x' WHERE school_id = :b"), {"b": tenants.school_b}
        )
        assert changed.rowcount == 0
        await conn.execute(text("SELECT set_config('app.role', 'platform_admin', true)"))
        assert (await conn.execute(counters_b, {"o": UUID(tenants.order_b)})).scalar_one() == 1


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"])
async def test_the_audit_log_is_append_only_for_the_application(app_client: httpx.AsyncClient, statement: str) -> None:
    engine = app_client.app_runtime.db.engine  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        await conn.execute(text("SELECT set_config('app.role', 'system', true)"))
        refused = conn.execute(text(statement))
        with pytest.raises(DBAPIError, match="permission denied"):
            await refused
    assert (await system_rows(app_client, "SELECT count(*) AS n FROM audit_log"))[0]["n"] > 0


async def _b_state(client: httpx.AsyncClient, t: Tenants) -> list[Any]:
    return [
        await system_rows(client, "SELECT status, notes, team FROM orders WHERE id = :o", o=UUID(t.order_b)),
        await system_rows(client, "SELECT count(*) AS n FROM tasks WHERE order_id = :o", o=UUID(t.order_b)),
        await system_rows(client, "SELECT status FROM tasks WHERE id = :t", t=UUID(t.task_b)),
        await system_rows(client, "SELECT count(*) AS n FROM data_sources WHERE order_id = :o", o=UUID(t.order_b)),
        await system_rows(client, "SELECT status FROM milestones WHERE id = :m", m=UUID(t.milestone_b)),
        await system_rows(client, "SELECT count(*) AS n FROM orders WHERE school_id = :s", s=t.school_b),
        await system_rows(client, "SELECT count(*) AS n, max(version) AS v FROM care_packages"),
        await system_rows(client, "SELECT count(*) AS n FROM exchange_rates"),
    ]
