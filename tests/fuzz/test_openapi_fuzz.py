"""schemathesis against the live OpenAPI documents of orders, payments and notifications: no 5xx and
every documented response matches its schema. `make test` runs a few examples per operation
(FUZZ_EXAMPLES, default 5); `make fuzz` runs many more.

schemathesis' own pytest integration (`parametrize` / `from_fixture`) does not work with the pytest this
project uses, so each test drives schemathesis directly: load the live document, and for every operation
run a plain hypothesis test over that operation's case strategy."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET

from tests.support.system import System

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # the short `make test` run is reproducible; `make fuzz` explores freely
    derandomize=EXAMPLES <= 5,
    database=None,
)
ADMIN = {"Authorization": f"Bearer {issue_token(DEV_JWT_SECRET, sub='fuzzer', role='platform_admin')}"}
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZED = ["orders", "payments", "notifications"]


def _fuzz_operation(
    operation: schemathesis.APIOperation, base_url: str, session: requests.Session
) -> Callable[[], None]:
    @FUZZ_SETTINGS
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, session=session, headers=ADMIN, checks=CHECKS, timeout=30)

    return fuzz


@pytest.mark.parametrize("service", FUZZED)
def test_api_answers_fuzzed_requests_without_5xx_and_as_documented(fuzz_system: System, service: str) -> None:
    base_url = fuzz_system.url(service)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: dict[str, str] = {}
    fuzzed = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            # an operation schemathesis cannot even read is a defect of the published document
            assert isinstance(result, Ok), f"{service}: unusable operation in the OpenAPI document: {result}"
            operation = result.ok()
            try:
                _fuzz_operation(operation, base_url, session)()
            # every operation is fuzzed and all failures are reported together; schemathesis raises its
            # check failures as a BaseExceptionGroup, so `except Exception` alone would stop at the first
            except (Exception, FailureGroup) as exc:
                failures[operation.label] = str(exc)
            fuzzed += 1
    assert fuzzed > 0, f"{service}: the OpenAPI document lists no operations"
    assert not failures, f"{service}: {len(failures)}/{fuzzed} operations failed:\n" + "\n\n".join(
        f"=== {label}\n{message}" for label, message in failures.items()
    )
