"""One running system for the security tests, with issuer and audience enforced, and two schools' data in it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET

from tests.faults.harness import ORDERS, eventually, new_phone, order_body
from tests.support.system import System, running_system

ISSUER = "https://auth.oneclass.test"
AUDIENCE = "oneclass-migration-services"
SECURED = ("orders", "payments", "notifications")
# a public address literal: registering it needs no DNS, and nothing is ever delivered in these tests
PUBLIC_TARGET = "https://93.184.216.34/oneclass-hook"


def token(role: str, school_id: UUID | None = None, sub: str = "user") -> str:
    return issue_token(DEV_JWT_SECRET, sub=sub, role=role, school_id=school_id, issuer=ISSUER, audience=AUDIENCE)


@dataclass
class Tenant:
    """One school with an order, its payment plan, a payment, a logged message and a webhook endpoint."""

    school_id: UUID
    token: str
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Secured:
    system: System
    own: Tenant
    other: Tenant
    admin_token: str = field(default_factory=lambda: token("platform_admin", sub="admin"))
    team_token: str = field(default_factory=lambda: token("team_member", sub="tm-nobody"))
    openapi: dict[str, dict[str, Any]] = field(default_factory=dict)


def _seed(system: System, admin: str) -> Tenant:
    school = uuid4()
    tenant = Tenant(school, token("school_admin", school))
    admin_headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(timeout=30) as client:
        created = client.post(f"{system.url('orders')}{ORDERS}", json=order_body(new_phone()), headers=tenant.headers)
        assert created.status_code == 201, created.text
        order_id = created.json()["id"]
        tenant.ids["order_id"] = order_id
        quote = client.post(
            f"{system.url('orders')}/api/v1/migration-services/quotes",
            json={"student_count": 300, "payment_option": "split"},
            headers=tenant.headers,
        )
        assert quote.status_code == 201, quote.text
        tenant.ids["quote_id"] = quote.json()["id"]
        approved = client.patch(
            f"{system.url('orders')}{ORDERS}/{order_id}/status", json={"status": "approved"}, headers=admin_headers
        )
        assert approved.status_code == 200, approved.text
        tenant.ids["milestone_id"] = approved.json()["milestones"][0]["id"]
        task = client.post(
            f"{system.url('orders')}{ORDERS}/{order_id}/tasks", json={"title": "collect exports"}, headers=admin_headers
        )
        assert task.status_code == 201, task.text
        tenant.ids["task_id"] = task.json()["id"]

        plan_url = f"{system.url('payments')}/api/v1/payments/orders/{order_id}/plan"
        plan = eventually(lambda: (r := client.get(plan_url, headers=tenant.headers)).status_code == 200 and r.json())
        installment = plan["installments"][0]["id"]
        tenant.ids["installment_id"] = installment
        checkout = client.post(
            f"{system.url('payments')}/api/v1/payments/installments/{installment}/checkout",
            json={"provider": "stripe"},
            headers=tenant.headers,
        )
        assert checkout.status_code == 201, checkout.text
        tenant.ids["payment_id"] = checkout.json()["payment_id"]

        messages_url = f"{system.url('notifications')}/api/v1/notifications/messages"

        def message() -> str | None:
            body = client.get(messages_url, params={"order_id": order_id}, headers=admin_headers).json()
            items = body.get("items", []) if isinstance(body, dict) else body
            return str(items[0]["id"]) if items else None

        tenant.ids["message_id"] = eventually(message)
        endpoint = client.post(
            f"{system.url('notifications')}/api/v1/webhooks/endpoints",
            json={"url": PUBLIC_TARGET, "event_types": ["orders.order_created"]},
            headers=tenant.headers,
        )
        assert endpoint.status_code == 201, endpoint.text
        tenant.ids["endpoint_id"] = endpoint.json()["id"]
    return tenant


@pytest.fixture(scope="package")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    with running_system(
        tmp_path_factory.mktemp("security"), list(SECURED), AUTH_JWT_ISSUER=ISSUER, AUTH_JWT_AUDIENCE=AUDIENCE
    ) as system:
        admin = token("platform_admin", sub="seed-admin")
        own, other = _seed(system, admin), _seed(system, admin)
        state = Secured(system, own, other)
        for name in SECURED:
            state.openapi[name] = httpx.get(f"{system.url(name)}/openapi.json", timeout=10).json()
        yield state
