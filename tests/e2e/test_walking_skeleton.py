"""The foundation's promise end to end: four services as separate processes on the real broker."""

import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import httpx
import pytest
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET

from tests.support.system import System

pytestmark = pytest.mark.e2e

PHONE = "+263771234567"


def eventually(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"not reached within {timeout}s; last value: {last!r}")


def test_order_flows_to_payments_and_notifications_in_one_trace(system: System) -> None:
    school = uuid4()
    school_token = issue_token(DEV_JWT_SECRET, sub="head@school", role="school_admin", school_id=school)
    admin_token = issue_token(DEV_JWT_SECRET, sub="ops", role="platform_admin")
    phone = f"+26377{uuid4().int % 10**7:07d}"
    order = {
        "package_code": "growth",
        "student_count": 450,
        "add_ons": ["rush_migration"],
        "payment_option": "split",
        "currency": "USD",
        "contact": {"name": "Head Teacher", "phone": phone, "email": "head@school.example", "language": "en"},
    }
    created = httpx.post(
        f"{system.url('orders')}/api/v1/migration-services/orders",
        json=order,
        headers={"Authorization": f"Bearer {school_token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    assert created.json()["total"] == {"amount_minor": 750000, "currency": "USD"}

    def plan() -> dict[str, Any] | None:
        r = httpx.get(
            f"{system.url('payments')}/api/v1/payments/orders/{order_id}/plan",
            headers={"Authorization": f"Bearer {school_token}"},
            timeout=5,
        )
        return r.json() if r.status_code == 200 else None

    found_plan = eventually(plan)
    amounts = [i["amount"]["amount_minor"] for i in found_plan["installments"]]
    assert sum(amounts) == 750000
    assert len(amounts) == 2

    def logged_sms() -> list[dict[str, Any]]:
        r = httpx.get(
            f"{system.url('notifications')}/api/v1/notifications/messages",
            params={"order_id": order_id},
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=5,
        )
        items = r.json() if r.status_code == 200 else []
        items = items.get("items", items) if isinstance(items, dict) else items
        return [m for m in items if m.get("channel") == "sms"]

    assert eventually(logged_sms)

    def sandbox_sms() -> list[dict[str, Any]]:
        r = httpx.get(f"{system.sandbox_url}/_sandbox/sms", params={"to": phone}, timeout=5)
        return r.json() if r.status_code == 200 else []

    assert eventually(sandbox_sms)

    # One trace: the HTTP request's trace id appears in spans of payments and notifications.
    def trace_services() -> set[str]:
        spans = system.spans()
        roots = [
            s
            for s in spans
            if s.get("resource", {}).get("attributes", {}).get("service.name") == "orders"
            and s.get("kind") == "SpanKind.SERVER"
            and "/orders" in s.get("name", "")
            and s.get("attributes", {}).get("http.request.method", s.get("attributes", {}).get("http.method")) == "POST"
        ]
        if not roots:
            return set()
        trace_id = roots[-1]["context"]["trace_id"]
        return {s["resource"]["attributes"]["service.name"] for s in spans if s["context"]["trace_id"] == trace_id}

    services = eventually(
        lambda: (lambda s: s if {"orders", "payments", "notifications"} <= s else None)(trace_services())
    )
    assert {"orders", "payments", "notifications"} <= services


def test_every_service_is_ready(system: System) -> None:
    for name in system.services:
        r = httpx.get(f"{system.url(name)}/readyz", timeout=5)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["checks"] == {"database": True, "broker": True}
