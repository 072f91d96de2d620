"""Every secured endpoint of orders, payments and notifications (read from each running service's own
OpenAPI document, so a new endpoint joins the matrix by itself) x every role x own / other school.

A cell is *allowed* when the answer is neither 401, 403 nor 404 (a 409 or 422 means the request got
past authorization), *denied* when it is 403 or 404, and never a 5xx. Mutations carry a valid body so
a denial cannot hide behind body validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.faults.harness import say

from .conftest import PUBLIC_TARGET, SECURED, Secured, Tenant

pytestmark = pytest.mark.e2e

OS = "/api/v1/migration-services"
# Only a platform admin may call these, whoever owns the data.
ADMIN_ONLY = {
    ("GET", f"{OS}/dashboard"),
    ("GET", f"{OS}/analytics"),
    ("GET", f"{OS}/team-performance"),
    ("GET", f"{OS}/audit"),
    ("POST", f"{OS}/care-packages"),
    ("PUT", f"{OS}/care-packages/{{code}}"),
    ("POST", f"{OS}/exchange-rates"),
    ("POST", f"{OS}/orders/{{order_id}}/team"),
    ("PATCH", f"{OS}/orders/{{order_id}}/status"),
    ("PATCH", f"{OS}/orders/{{order_id}}/milestones/{{milestone_id}}"),
    ("GET", "/api/v1/payments/webhooks/inbox"),
    ("POST", "/api/v1/payments/{payment_id}/refunds"),
    ("POST", "/api/v1/notifications/bulk"),
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/replay"),
}
# Team members who are not on the order's team, and anyone from another school, must not reach
# data keyed by these parameters.
TENANT_PARAMS = {
    "order_id",
    "quote_id",
    "milestone_id",
    "task_id",
    "installment_id",
    "payment_id",
    "message_id",
    "endpoint_id",
}
# Valid bodies, so that only authorization can refuse the request.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", f"{OS}/orders"): {
        "package_code": "growth",
        "student_count": 300,
        "payment_option": "split",
        "currency": "USD",
        "contact": {"name": "Head", "phone": "+263771234567", "email": "head@school.example"},
    },
    ("POST", f"{OS}/quotes"): {"student_count": 300, "payment_option": "split"},
    ("PUT", f"{OS}/orders/{{order_id}}"): {"notes": "matrix probe"},
    ("PATCH", f"{OS}/orders/{{order_id}}/status"): {"status": "on_hold", "reason": "matrix probe"},
    ("POST", f"{OS}/orders/{{order_id}}/team"): {"members": ["tm-ann"], "lead": "tm-ann"},
    ("POST", f"{OS}/orders/{{order_id}}/tasks"): {"title": "matrix probe"},
    ("PUT", f"{OS}/tasks/{{task_id}}"): {"title": "matrix probe"},
    ("PATCH", f"{OS}/orders/{{order_id}}/milestones/{{milestone_id}}"): {"status": "completed"},
    ("POST", f"{OS}/orders/{{order_id}}/data-sources"): {"name": "legacy export", "kind": "csv", "approx_rows": 10},
    ("POST", f"{OS}/care-packages"): {
        "code": "growth",
        "name": "Growth",
        "price_minor": 1,
        "min_students": 1,
        "base_timeline_days": 1,
    },
    ("PUT", f"{OS}/care-packages/{{code}}"): {"description": "matrix probe"},
    ("POST", f"{OS}/exchange-rates"): {"currency": "ZWL", "rate": "26.5", "effective_date": "2020-01-01"},
    ("POST", "/api/v1/payments/installments/{installment_id}/checkout"): {"provider": "stripe"},
    ("POST", "/api/v1/payments/{payment_id}/refunds"): {"reason": "matrix probe"},
    ("POST", "/api/v1/webhooks/endpoints"): {"url": PUBLIC_TARGET, "event_types": ["orders.order_created"]},
    ("POST", "/api/v1/notifications/bulk"): {"message": "matrix probe", "channels": ["sms"], "recipients": []},
    ("POST", "/api/v1/notifications/recipients"): {"name": "Probe", "phone": "+263771234567"},
    ("PUT", "/api/v1/notifications/preferences"): {"recipient": "+263771234567", "channels": ["sms"]},
}
ROLES = ("platform_admin", "own_school_admin", "other_school_admin", "unassigned_team_member")


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    params: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @property
    def tenant_scoped(self) -> bool:
        return bool(set(self.params) & TENANT_PARAMS)

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path}"


def secured_operations(state: Secured) -> Iterator[Operation]:
    for service in SECURED:
        for path, methods in state.openapi[service]["paths"].items():
            for method, op in methods.items():
                if op.get("security"):
                    params = tuple(p["name"] for p in op.get("parameters", []) if p.get("in") == "path")
                    yield Operation(service, method.upper(), path, params)


def expected(op: Operation, role: str) -> str:
    if role == "platform_admin":
        return "allow"
    if op.key in ADMIN_ONLY:
        return "deny"
    if role == "other_school_admin" and op.tenant_scoped:
        return "deny"
    if role == "unassigned_team_member" and (op.tenant_scoped or op.service != "orders"):
        # outside orders a team member has no business with a school's payments or messages
        return "deny"
    return "allow"


def fill(path: str, tenant: Tenant) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "code":
            return "growth"
        return tenant.ids.get(name, str(uuid4()))

    return re.sub(r"\{(\w+)\}", value, path)


def call(state: Secured, op: Operation, token: str | None, owner: Tenant) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if op.method in {"POST", "PUT", "PATCH"}:
        headers["Idempotency-Key"] = f"matrix-{uuid4()}"
    body = BODIES.get(op.key)
    return httpx.request(
        op.method,
        state.system.url(op.service) + fill(op.path, owner),
        json=body if op.method in {"POST", "PUT", "PATCH"} else None,
        headers=headers,
        timeout=30,
    )


def tokens(state: Secured) -> dict[str, str]:
    return {
        "platform_admin": state.admin_token,
        "own_school_admin": state.own.token,
        "other_school_admin": state.other.token,
        "unassigned_team_member": state.team_token,
    }


def test_every_secured_mutation_has_a_valid_body(secured: Secured) -> None:
    missing = [
        str(op)
        for op in secured_operations(secured)
        if op.method in {"POST", "PUT", "PATCH"} and op.key not in BODIES and not _body_optional(secured, op)
    ]
    assert not missing, f"add a valid body to BODIES so authorization, not validation, decides: {missing}"


def _body_optional(state: Secured, op: Operation) -> bool:
    spec = state.openapi[op.service]["paths"][op.path][op.method.lower()]
    return "requestBody" not in spec or not spec["requestBody"].get("required", False)


def test_anonymous_is_refused_everywhere(secured: Secured) -> None:
    wrong = []
    operations = list(secured_operations(secured))
    for op in operations:
        response = call(secured, op, None, secured.own)
        if response.status_code != 401 or not response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            wrong.append(f"{op}: {response.status_code}")
    say(f"anonymous: {len(operations)} secured operations, {len(wrong)} not refused with 401 problem+json")
    assert not wrong


@pytest.mark.parametrize("role", ROLES)
def test_matrix_row(secured: Secured, role: str) -> None:
    """Each cell asserted; reads run before writes so an allowed write cannot hide a later denial."""
    token = tokens(secured)[role]
    operations = sorted(secured_operations(secured), key=lambda op: (op.method != "GET", op.method == "DELETE"))
    wrong, table = [], []
    for op in operations:
        want = expected(op, role)
        if op.method == "DELETE" and want == "allow":
            _fresh_endpoint(secured)
        response = call(secured, op, token, secured.own)
        status = response.status_code
        got = "deny" if status in {403, 404} else "error" if status >= 500 or status == 401 else "allow"
        table.append(f"{want:5} {status} {op}")
        if got != want:
            wrong.append(f"{op}: expected {want}, got {status} {response.text[:200]}")
        elif got == "allow" and op.method == "GET" and role != "platform_admin":
            strangers = {"own_school_admin": [secured.other], "other_school_admin": [secured.own]}.get(
                role, [secured.own, secured.other]
            )
            leaked = [found for tenant in strangers for found in _school_ids_in(response, tenant)]
            if leaked:
                wrong.append(f"{op}: shows another school's {leaked}")
    say(f"{role}: {len(table)} cells\n  " + "\n  ".join(table))
    assert not wrong, "\n".join(wrong)


def _fresh_endpoint(state: Secured) -> None:
    """DELETE cells each remove a webhook endpoint of their own."""
    created = httpx.post(
        f"{state.system.url('notifications')}/api/v1/webhooks/endpoints",
        json=BODIES[("POST", "/api/v1/webhooks/endpoints")],
        headers=state.own.headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    state.own.ids["endpoint_id"] = created.json()["id"]


def _school_ids_in(response: httpx.Response, other: Tenant) -> list[str]:
    text = response.text
    return [name for name, value in other.ids.items() if value in text] + (
        ["school_id"] if str(other.school_id) in text else []
    )
