"""Forged and broken bearer tokens are refused by every service, on every secured endpoint."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest
from servicekit.settings import DEV_JWT_SECRET

from tests.faults.harness import say

from .conftest import AUDIENCE, ISSUER, SECURED, Secured
from .test_access_matrix import call, secured_operations

pytestmark = pytest.mark.e2e


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": "attacker",
        "role": "platform_admin",
        "iat": now,
        "exp": now + timedelta(hours=1),
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, default=lambda v: int(v.timestamp())).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _signed(claims: dict[str, Any], key: str = DEV_JWT_SECRET) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


def _hand_signed(header: dict[str, Any], claims: dict[str, Any], key: bytes, digest: str = "sha256") -> str:
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


FORGED: dict[str, str] = {
    "alg none": _unsigned(_claims()),
    "alg none, upper case": _unsigned(_claims()).replace(_b64({"alg": "none", "typ": "JWT"}), _b64({"alg": "NONE"})),
    "wrong key": _signed(_claims(), "not-the-secret-0123456789abcdef0123456789"),
    "wrong issuer": _signed(_claims(iss="https://evil.example")),
    "no issuer": _signed(_claims(iss=None)),
    "wrong audience": _signed(_claims(aud="someone-else")),
    "no audience": _signed(_claims(aud=None)),
    "expired": _signed(_claims(exp=datetime.now(UTC) - timedelta(minutes=5))),
    "no expiry": _signed(_claims(exp=None)),
    "no subject": _signed(_claims(sub=None)),
    "no role": _signed(_claims(role=None)),
    "unknown role": _signed(_claims(role="superuser")),
    "school admin without school": _signed(_claims(role="school_admin")),
    "school id not a uuid": _signed(_claims(role="school_admin", school_id="1 OR 1=1")),
    "signature stripped": _signed(_claims()).rsplit(".", 1)[0] + ".",
    "garbage": "not.a.jwt",
    "HS256 signed with an empty key": _hand_signed({"alg": "HS256", "typ": "JWT"}, _claims(), b""),
    "RS256 header over an HMAC signature": _hand_signed({"alg": "RS256"}, _claims(), DEV_JWT_SECRET.encode()),
    "HS512 not in the allowed list": _hand_signed({"alg": "HS512"}, _claims(), DEV_JWT_SECRET.encode(), "sha512"),
}


@pytest.mark.parametrize("service", SECURED)
def test_every_forged_token_is_refused_on_every_endpoint(secured: Secured, service: str) -> None:
    operations = [op for op in secured_operations(secured) if op.service == service]
    assert operations, f"{service} publishes no secured operation"
    accepted = []
    for name, token in FORGED.items():
        for op in operations:
            response = call(secured, op, token, secured.own)
            if response.status_code != 401:
                accepted.append(f"{name} -> {op}: {response.status_code}")
    say(f"{service}: {len(FORGED)} forged tokens x {len(operations)} operations, {len(accepted)} not refused")
    assert not accepted, "\n".join(accepted)


def test_a_valid_token_passes_so_the_refusals_mean_something(secured: Secured) -> None:
    good = _signed(_claims(sub=f"admin-{uuid4()}"))
    for service in SECURED:
        response = httpx.get(
            f"{secured.system.url(service)}{_a_list(secured, service)}",
            headers={"Authorization": f"Bearer {good}"},
            timeout=10,
        )
        assert response.status_code == 200, (service, response.text)


def _a_list(state: Secured, service: str) -> str:
    for op in secured_operations(state):
        if op.service == service and op.method == "GET" and not op.params:
            return op.path
    raise AssertionError(f"{service} has no parameterless GET")
