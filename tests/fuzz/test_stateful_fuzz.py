"""Stateful fuzzing of orders and notifications: schemathesis chains operations through OpenAPI links,
so generated sequences reach real resources (place an order, then read, change, move and add tasks to
*that* order; request a quote, then read it and order from it; register a recipient, then delete it;
start a bulk send, then follow it) instead of mostly hitting 404s.

The services' documents declare no links, so the links are added here to the loaded copy of the live
document (the service itself is not changed). Checks on every step: no 5xx, the response matches the
documented schema, and a resource the API just created can be read back (`ensure_resource_availability`).
`make test` runs FUZZ_STATEFUL_EXAMPLES scenarios (default 8); `make fuzz` runs more."""

from __future__ import annotations

import collections
import copy
import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ensure_resource_availability, response_schema_conformance

from tests.faults.harness import Workload, eventually
from tests.fuzz.test_openapi_fuzz import ADMIN
from tests.support.system import System

pytestmark = pytest.mark.e2e

SCENARIOS = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", os.environ.get("FUZZ_EXAMPLES", "8")))
STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "6"))
CHECKS = [not_a_server_error, response_schema_conformance, ensure_resource_availability]
API = "/api/v1/migration-services"
ORDER_ID = "$response.body#/id"

Links = dict[tuple[str, str, str], list[tuple[str, str, dict[str, str], dict[str, str] | None]]]
# (source method, source path, status) -> [(target method, target path, parameters, request body)]
ORDERS_LINKS: Links = {
    ("post", f"{API}/orders", "201"): [
        ("get", f"{API}/orders/{{order_id}}", {"order_id": ORDER_ID}, None),
        ("put", f"{API}/orders/{{order_id}}", {"order_id": ORDER_ID}, None),
        ("patch", f"{API}/orders/{{order_id}}/status", {"order_id": ORDER_ID}, None),
        ("get", f"{API}/orders/{{order_id}}/tasks", {"order_id": ORDER_ID}, None),
        ("post", f"{API}/orders/{{order_id}}/tasks", {"order_id": ORDER_ID}, None),
        ("get", f"{API}/orders/{{order_id}}/milestones", {"order_id": ORDER_ID}, None),
        ("get", f"{API}/orders/{{order_id}}/data-sources", {"order_id": ORDER_ID}, None),
        ("post", f"{API}/orders/{{order_id}}/team", {"order_id": ORDER_ID}, None),
    ],
    ("get", f"{API}/orders/{{order_id}}", "200"): [
        (
            "patch",
            f"{API}/orders/{{order_id}}/milestones/{{milestone_id}}",
            {"order_id": ORDER_ID, "milestone_id": "$response.body#/milestones/0/id"},
            None,
        ),
        ("patch", f"{API}/orders/{{order_id}}/status", {"order_id": ORDER_ID}, None),
    ],
    ("patch", f"{API}/orders/{{order_id}}/status", "200"): [
        ("get", f"{API}/orders/{{order_id}}", {"order_id": ORDER_ID}, None),
        ("patch", f"{API}/orders/{{order_id}}/status", {"order_id": ORDER_ID}, None),
    ],
    ("post", f"{API}/orders/{{order_id}}/tasks", "201"): [
        ("put", f"{API}/tasks/{{task_id}}", {"task_id": "$response.body#/id"}, None),
        ("get", f"{API}/orders/{{order_id}}/tasks", {"order_id": "$response.body#/order_id"}, None),
    ],
    ("post", f"{API}/quotes", "201"): [
        ("get", f"{API}/quotes/{{quote_id}}", {"quote_id": "$response.body#/id"}, None),
        (
            "post",
            f"{API}/orders",
            {},
            {
                "package_code": "$response.body#/package/code",
                "student_count": "$response.body#/student_count",
                "payment_option": "$response.body#/payment_option",
                "school_id": "$response.body#/school_id",
            },
        ),
    ],
    ("post", f"{API}/care-packages", "201"): [
        ("get", f"{API}/care-packages/{{code}}", {"code": "$response.body#/code"}, None),
        ("put", f"{API}/care-packages/{{code}}", {"code": "$response.body#/code"}, None),
    ],
}


NOTIFY = "/api/v1/notifications"
NOTIFICATIONS_LINKS: Links = {
    ("post", f"{NOTIFY}/recipients", "201"): [
        ("delete", f"{NOTIFY}/recipients/{{recipient_id}}", {"recipient_id": "$response.body#/id"}, None),
    ],
    ("post", f"{NOTIFY}/bulk", "202"): [
        ("get", f"{NOTIFY}/bulk/{{bulk_id}}", {"bulk_id": "$response.body#/id"}, None),
    ],
    ("post", "/api/v1/webhooks/endpoints", "201"): [
        ("get", "/api/v1/webhooks/endpoints/{endpoint_id}", {"endpoint_id": "$response.body#/id"}, None),
        ("get", "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries", {"endpoint_id": "$response.body#/id"}, None),
        ("delete", "/api/v1/webhooks/endpoints/{endpoint_id}", {"endpoint_id": "$response.body#/id"}, None),
    ],
    ("get", f"{NOTIFY}/messages", "200"): [
        ("get", f"{NOTIFY}/messages/{{message_id}}/attempts", {"message_id": "$response.body#/items/0/id"}, None),
    ],
}
# per service: its links, and a step that proves sequences reached a resource an earlier step created
# and the operations the sequences are drawn from (the linked ones, so the few scenarios are not spent
# on unrelated reads)
STATEFUL: dict[str, tuple[Links, str, str]] = {
    "orders": (ORDERS_LINKS, f"GET {API}/orders/{{order_id}} 200", r"/(orders|quotes|tasks)"),
    "notifications": (
        NOTIFICATIONS_LINKS,
        f"GET {NOTIFY}/messages/{{message_id}}/attempts 200",
        r"/(messages|recipients|bulk|webhooks/endpoints)",
    ),
}


def narrowed(document: dict[str, Any], service: str) -> dict[str, Any]:
    """Orders: new orders and quotes for the growth package within its size range, paid in full or
    split, for a named school, so that generated orders are accepted often enough for the links to
    matter (the stateless fuzzer covers the whole input space)."""
    if service != "orders":
        return document
    schemas = document["components"]["schemas"]
    for name in ("PlaceOrder", "RequestQuote"):
        properties = schemas[name]["properties"]
        properties["package_code"] = {"type": "string", "enum": ["growth"]}
        properties["student_count"] = {"type": "integer", "minimum": 200, "maximum": 800}
        properties["payment_option"] = {"type": "string", "enum": ["full", "split"]}
        properties["school_id"] = {"type": "string", "format": "uuid"}
        schemas[name]["required"] = sorted({*schemas[name].get("required", []), "school_id"})
    return document


def seed_messages(system: System) -> None:
    """Notifications' message log needs a real order behind it: place and approve one, wait for its SMS."""
    with httpx.Client(timeout=30) as client:
        Workload(system).step(client, pay=False)
        eventually(
            lambda: client.get(f"{system.url('notifications')}{NOTIFY}/messages", headers=ADMIN).json().get("items"),
            90,
        )


def with_links(document: dict[str, Any], links: Links) -> tuple[dict[str, Any], int]:
    """A copy of the document with the links declared on the source operations' responses."""
    linked = copy.deepcopy(document)
    paths = linked["paths"]
    added = 0
    for (method, path, status), targets in links.items():
        response = paths[path][method]["responses"][status]
        declared = response.setdefault("links", {})
        for target_method, target_path, parameters, body in targets:
            link: dict[str, Any] = {"operationId": paths[target_path][target_method]["operationId"]}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            declared[f"{target_method.upper()} {target_path}"] = link
            added += 1
    return linked, added


@pytest.mark.parametrize("service", STATEFUL)
def test_linked_sequences_answer_without_5xx_and_as_documented(fuzz_system: System, service: str) -> None:
    links, proof, operations = STATEFUL[service]
    base_url = fuzz_system.url(service)
    if service == "notifications":
        seed_messages(fuzz_system)
    live = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    document, added = with_links(narrowed(live, service), links)
    schema = schemathesis.openapi.from_dict(document).include(path_regex=operations)
    # sequences of valid requests (bad input is the stateless fuzzer's part), all as a platform admin
    schema.config.generation.update(modes=[GenerationMode.POSITIVE], with_security_parameters=False)
    assert schema.statistic.transitions.total >= added, "the added links were not taken up by schemathesis"
    reached: collections.Counter[str] = collections.Counter()

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            # every step as a platform admin: a generated Authorization header would only test 401s
            case.headers.update(ADMIN)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": base_url, "timeout": 30}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            reached[f"{case.method} {case.path} {response.status_code}"] += 1

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=getattr(self, "recorder", None)
            )

    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=SCENARIOS <= 8,  # the short `make test` run is reproducible
            database=None,
        )
    )
    print(f"[reliability] stateful {service}: {sum(reached.values())} calls; {dict(reached.most_common(12))}")
    # the point of stateful fuzzing: later steps act on resources earlier steps created
    assert reached[proof] > 0, dict(reached)
