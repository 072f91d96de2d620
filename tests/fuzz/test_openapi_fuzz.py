"""schemathesis against the live OpenAPI documents of orders, payments and notifications: no 5xx and
every documented response matches its schema. `make test` runs a few examples per operation
(FUZZ_EXAMPLES, default 5); `make fuzz` runs many more."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET

from tests.support.system import System

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=EXAMPLES <= 5
)
ADMIN = {"Authorization": f"Bearer {issue_token(DEV_JWT_SECRET, sub='fuzzer', role='platform_admin')}"}
CHECKS = [not_a_server_error, response_schema_conformance]


def _schema(system: System, service: str) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{system.url(service)}/openapi.json")


@pytest.fixture(scope="module")
def orders_schema(fuzz_system: System) -> schemathesis.schemas.BaseSchema:
    return _schema(fuzz_system, "orders")


@pytest.fixture(scope="module")
def payments_schema(fuzz_system: System) -> schemathesis.schemas.BaseSchema:
    return _schema(fuzz_system, "payments")


@pytest.fixture(scope="module")
def notifications_schema(fuzz_system: System) -> schemathesis.schemas.BaseSchema:
    return _schema(fuzz_system, "notifications")


orders = schemathesis.pytest.from_fixture("orders_schema")
payments = schemathesis.pytest.from_fixture("payments_schema")
notifications = schemathesis.pytest.from_fixture("notifications_schema")


@orders.parametrize()
@FUZZ_SETTINGS
def test_orders_api(case: schemathesis.Case, fuzz_system: System) -> None:
    case.call_and_validate(base_url=fuzz_system.url("orders"), headers=ADMIN, checks=CHECKS, timeout=30)


@payments.parametrize()
@FUZZ_SETTINGS
def test_payments_api(case: schemathesis.Case, fuzz_system: System) -> None:
    case.call_and_validate(base_url=fuzz_system.url("payments"), headers=ADMIN, checks=CHECKS, timeout=30)


@notifications.parametrize()
@FUZZ_SETTINGS
def test_notifications_api(case: schemathesis.Case, fuzz_system: System) -> None:
    case.call_and_validate(base_url=fuzz_system.url("notifications"), headers=ADMIN, checks=CHECKS, timeout=30)
