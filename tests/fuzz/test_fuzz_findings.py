"""Inputs the API fuzzer once turned into a 5xx, replayed every run: random generation may not find
them again, and each must stay a 4xx problem+json."""

from __future__ import annotations

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
