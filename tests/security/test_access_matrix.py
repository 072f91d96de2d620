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
    ("GET", "/api/v1/notifications/bulk/{bulk_id}"),
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
    ("POST", f"{OS}/orders/{{order_id}}/data-sources"): {
        "kind": "postgres",
        "name": "legacy SIS",
        "dsn": "postgresql://legacy@db.school.example/sis",
    },
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
    ("POST", "/api/v1/notifications/bulk"): {
        "channel": "sms",
        "text": "matrix probe",
        "recipients": [{"phone": "+263771234567"}],
    },
    ("POST", "/api/v1/notifications/recipients"): {"name": "Probe", "phone": "+263771234567"},
    ("PUT", "/api/v1/notifications/preferences"): {"address": "+263771234567", "channel": "sms", "opted_out": False},
}
# Ids nobody seeded: a 404 there cannot tell "hidden" from "absent", so for the allowed roles it counts as
# allowed; for the denied roles it must still be 403 or 404.
UNSEEDED = {"bulk_id", "delivery_id", "recipient_id"}
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", f"{OS}/analytics"): {"from": "2020-01-01", "to": "2030-01-01"},
}
# Only school admins act for themselves; a platform admin names the school.
SCHOOL_CREATORS = {("POST", f"{OS}/orders"), ("POST", f"{OS}/quotes")}
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
    if role == "unassigned_team_member" and (op.tenant_scoped or op.service != "orders" or op.key in SCHOOL_CREATORS):
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


def call(
    state: Secured, op: Operation, token: str | None, owner: Tenant, *, names_school: bool = False
) -> httpx.Response:
    """`names_school`: the caller is a platform admin and says which school it acts for."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if op.method in {"POST", "PUT", "PATCH"}:
        headers["Idempotency-Key"] = f"matrix-{uuid4()}"
    body = BODIES.get(op.key)
    params = dict(QUERIES.get(op.key, {}))
    if names_school:
        if isinstance(body, dict):
            body = {**body, "school_id": str(owner.school_id)}
        if op.method == "GET" and any(p == "school_id" for p in _query_names(state, op)):
            params["school_id"] = str(owner.school_id)
    return httpx.request(
        op.method,
        state.system.url(op.service) + fill(op.path, owner),
        params=params,
        json=body if op.method in {"POST", "PUT", "PATCH"} else None,
        headers=headers,
        timeout=30,
    )


def _query_names(state: Secured, op: Operation) -> list[str]:
    spec = state.openapi[op.service]["paths"][op.path][op.method.lower()]
    return [p["name"] for p in spec.get("parameters", []) if p.get("in") == "query"]


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
        owner = secured.own
        if op.method == "DELETE" and "endpoint_id" in op.params and want == "allow":
            owner = _with_fresh_endpoint(secured)
        response = call(secured, op, token, owner, names_school=role == "platform_admin")
        status = response.status_code
        got = "deny" if status in {403, 404} else "error" if status >= 500 or status == 401 else "allow"
        if got == "deny" and want == "allow" and status == 404 and set(op.params) & UNSEEDED:
            got = "allow"
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


def _with_fresh_endpoint(state: Secured) -> Tenant:
    """Each allowed DELETE removes a webhook endpoint of its own, leaving the shared one for later cells."""
    created = httpx.post(
        f"{state.system.url('notifications')}/api/v1/webhooks/endpoints",
        json=BODIES[("POST", "/api/v1/webhooks/endpoints")],
        headers=state.own.headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return Tenant(state.own.school_id, state.own.token, {**state.own.ids, "endpoint_id": created.json()["id"]})


def _school_ids_in(response: httpx.Response, other: Tenant) -> list[str]:
    text = response.text
    return [name for name, value in other.ids.items() if value in text] + (
        ["school_id"] if str(other.school_id) in text else []
    )
