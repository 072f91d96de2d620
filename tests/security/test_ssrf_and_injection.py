"""Outbound webhooks refuse internal targets; SQL injection and path traversal in every string
parameter change nothing and never reach a 5xx."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from tests.faults.harness import say

from .conftest import SECURED, Secured
from .test_access_matrix import Operation, fill, secured_operations

pytestmark = pytest.mark.e2e

INTERNAL_TARGETS = [
    "https://127.0.0.1/hook",
    "https://127.1/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one decimal number
    "https://0x7f000001/hook",
    "https://localhost/hook",
    "https://localhost./hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://0.0.0.0/hook",
    "https://10.0.0.5/hook",
    "https://172.16.0.1/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata, link-local
    "https://[fe80::1]/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://[fd00::1]/hook",  # unique local IPv6
    "http://93.184.216.34/hook",  # public but not https
    "https://user:pass@93.184.216.34/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:25/",
    "https://nonexistent.invalid/hook",
]


def _endpoint_count(state: Secured) -> int:
    return len(
        httpx.get(
            f"{state.system.url('notifications')}/api/v1/webhooks/endpoints", headers=state.own.headers, timeout=10
        ).json()
    )


@pytest.mark.parametrize("target", INTERNAL_TARGETS)
def test_webhook_registration_refuses_internal_targets(secured: Secured, target: str) -> None:
    before = _endpoint_count(secured)
    response = httpx.post(
        f"{secured.system.url('notifications')}/api/v1/webhooks/endpoints",
        json={"url": target, "event_types": ["orders.order_created"]},
        headers={"Authorization": f"Bearer {secured.admin_token}"},
        timeout=30,
    )
    assert response.status_code == 422, (target, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert _endpoint_count(secured) == before


PROBES = [
    "' OR '1'='1",
    "1; DROP TABLE orders; --",
    "'; UPDATE payments SET status='succeeded' --",
    '" OR ""="',
    "1' UNION SELECT table_name FROM information_schema.tables --",
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%00",
    "\\x00\\u0000",
    "$(id)",
    "{{7*7}}",
    "a" * 5000,
]


def _fingerprint(state: Secured) -> dict[str, dict[str, int]]:
    """Row counts of every table of every service: an injected statement that ran would show here."""

    async def counts(url: str) -> dict[str, int]:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            tables = await conn.fetch(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
            result = {}
            for t in tables:
                result[f"{t['schemaname']}.{t['tablename']}"] = await conn.fetchval(
                    f'SELECT count(*) FROM "{t["schemaname"]}"."{t["tablename"]}"'
                )
            return result
        finally:
            await conn.close()

    return {name: asyncio.run(counts(state.system.databases[name])) for name in SECURED}


def _string_params(state: Secured, op: Operation) -> list[tuple[str, str]]:
    spec = state.openapi[op.service]["paths"][op.path][op.method.lower()]
    found = []
    for p in spec.get("parameters", []):
        schema: dict[str, Any] = p.get("schema", {})
        kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
        if p["in"] in {"query", "path"} and ("string" in kinds or p["in"] == "path"):
            found.append((p["in"], p["name"]))
    return found


# Tables that legitimately grow while we probe: request audit, rate limits, stored webhooks, and the
# attempts the outbound-webhook dispatcher keeps making on its own retry schedule for earlier tests' endpoints
_VOLATILE = ("audit", "rate", "webhook_inbox", "outbox", "inbox", "idempotency", "webhook_attempts")


def test_injection_and_traversal_probes_change_nothing(secured: Secured) -> None:
    reads = [op for op in secured_operations(secured) if op.method == "GET"]
    before = _fingerprint(secured)
    server_errors, sent = [], 0
    with httpx.Client(timeout=30) as client:
        for op in reads:
            for where, name in _string_params(secured, op):
                for probe in PROBES:
                    path = fill(op.path, secured.own)
                    params = {}
                    if where == "path":
                        path = op.path.replace(f"{{{name}}}", quote(probe, safe=""))
                        path = fill(path, secured.own)
                    else:
                        params[name] = probe
                    try:
                        response = client.get(
                            secured.system.url(op.service) + path,
                            params=params,
                            headers={"Authorization": f"Bearer {secured.admin_token}"},
                        )
                    except httpx.TransportError as exc:
                        server_errors.append(f"{op} {where}:{name}={probe[:40]!r}: connection {exc!r}")
                        continue
                    finally:
                        sent += 1
                    if response.status_code >= 500:
                        server_errors.append(f"{op} {where}:{name}={probe[:40]!r}: {response.status_code}")
    after = _fingerprint(secured)
    changed = {
        f"{svc}:{table}": (before[svc].get(table), n)
        for svc, tables in after.items()
        for table, n in tables.items()
        if before[svc].get(table) != n and not any(v in table for v in _VOLATILE)
    }
    say(f"injection: {sent} probes on {len(reads)} read operations; {len(server_errors)} 5xx; changed tables {changed}")
    assert not server_errors, "\n".join(server_errors)
    assert not changed
