"""Inputs the API fuzzer once turned into a 5xx, replayed every run: random generation may not find
them again, and each must stay a 4xx problem+json."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fuzz.test_openapi_fuzz import ADMIN
from tests.support.system import System

pytestmark = pytest.mark.e2e

FINDINGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "orders audit filter with a NUL character": (
        "orders",
        "GET",
        {"url": "/api/v1/migration-services/audit", "params": {"id": "a\x00b", "entity": "order"}},
    ),
    "orders: a NUL escape inside a JSON field of a new order (jsonb cannot hold it)": (
        "orders",
        "POST",
        {
            "url": "/api/v1/migration-services/orders",
            "json": {
                "package_code": "foundation",
                "student_count": 88,
                "payment_option": "full",
                "school_id": "04934e59-591d-30f7-b0be-66cd08ede61d",
                "contact": {"name": "Head"},
                "assessment": {
                    "school_name": "School",
                    "modules": ["a\x00b"],
                    "student_count": 88,
                    "staff_count": 5,
                    "data_sources": [],
                },
            },
        },
    ),
    "orders: a NUL character in a text field of a new order": (
        "orders",
        "POST",
        {
            "url": "/api/v1/migration-services/orders",
            "json": {
                "package_code": "foundation",
                "student_count": 88,
                "payment_option": "full",
                "school_id": "04934e59-591d-30f7-b0be-66cd08ede61d",
                "contact": {"name": "Head"},
                "notes": "a\x00b",
            },
        },
    ),
    "notifications inbound SMS from an unparsable number": (
        "notifications",
        "POST",
        {"url": "/api/v1/notifications/inbound/sms", "json": {"from": "000", "text": ""}},
    ),
}


@pytest.mark.parametrize("finding", FINDINGS)
def test_fuzz_finding_is_a_client_error(fuzz_system: System, finding: str) -> None:
    service, method, request = FINDINGS[finding]
    with httpx.Client(base_url=fuzz_system.url(service), headers=ADMIN, timeout=30) as client:
        response = client.request(method, **request)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    assert response.json()["status"] == response.status_code


NUL_IN_ORDER = [f for f, (_, _, request) in FINDINGS.items() if f.startswith("orders: a NUL")]


@pytest.mark.parametrize("finding", NUL_IN_ORDER)
def test_the_same_order_without_the_nul_is_accepted(fuzz_system: System, finding: str) -> None:
    """The control of each NUL finding: the body is otherwise valid, so the 422 is the NUL's doing,
    not a schema error the fuzzer happened to make as well."""
    _, method, request = FINDINGS[finding]
    body = json.loads(json.dumps(request["json"]).replace("\\u0000", ""))
    with httpx.Client(base_url=fuzz_system.url("orders"), headers=ADMIN, timeout=30) as client:
        response = client.request(method, request["url"], json=body)
    assert response.status_code == 201, (response.status_code, response.text)
