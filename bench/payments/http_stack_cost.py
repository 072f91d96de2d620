"""CPU cost of one request through the payments HTTP stack, in process (no network, no load generator).

Drives the real app (`payments.bootstrap.build(...).create_app()`) as an ASGI callable and reports the
process CPU time per request for the unsigned no-op and for signed Stripe webhook intake (verify + one
INSERT on a throwaway database). The same app with the OpenTelemetry contrib FastAPI instrumentor added
(how services were instrumented before: a span per request plus one per ASGI send/receive) is the
baseline measured in the same run. CPU time per request is much less sensitive to a busy machine than
requests/s, so this shows where the HTTP stack's time goes even when wrk figures are noisy.

    uv run python bench/payments/http_stack_cost.py [--requests 2000]
"""

import argparse
import asyncio
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from payments.bootstrap import PaymentsApp, build
from payments.settings import Settings
from sandbox.signing import stripe_signature_header
from servicekit.alembic_env import upgrade_async
from servicekit.testing import create_database, drop_database
from webhook_intake import Seeded, stripe_event

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_bench_" + secrets.token_hex(8)
ASGIApp = Callable[..., Awaitable[None]]


def _event() -> bytes:
    reference = f"pi_{uuid.uuid4().hex[:12]}"
    return stripe_event(Seeded(str(uuid.uuid4()), str(uuid.uuid4()), 100_000, reference))


async def _call(app: ASGIApp, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8001),
        "state": {},
    }
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never: the request is complete
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def _cpu_per_request(app: ASGIApp, path: str, signed: bool, requests: int) -> float:
    bodies = [_event() for _ in range(requests + requests // 5)]
    prepared = []
    for body in bodies:
        headers = [(b"content-type", b"application/json")]
        if signed:
            headers.append((b"stripe-signature", stripe_signature_header(body, SECRET).encode()))
        prepared.append((body, headers))
    warm, measured = prepared[: requests // 5], prepared[requests // 5 :]
    for body, headers in warm:
        await _call(app, path, body, headers)
    started = time.process_time()
    for body, headers in measured:
        status = await _call(app, path, body, headers)
        if status >= 300:
            raise RuntimeError(f"{path} answered {status}")
    return (time.process_time() - started) / len(measured) * 1e6


async def _measure(url: str, requests: int, contrib: bool) -> dict[str, float]:
    payments: PaymentsApp = build(
        Settings(database_url=url, stripe_webhook_secret=SECRET, log_level="WARNING", webhook_worker_enabled=False)
    )
    app = payments.create_app()
    if contrib:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=payments.runtime.tracer_provider, excluded_urls="healthz,readyz,metrics"
        )
    await payments.inbox.start()  # only the intake's pool: no broker, no background work
    try:
        return {
            "noop": await _cpu_per_request(app, "/api/v1/payments/noop", False, requests),
            "webhook": await _cpu_per_request(app, "/api/v1/payments/webhooks/stripe", True, requests),
        }
    finally:
        await payments.inbox.close()
        await payments.runtime.db.dispose()


async def main(requests: int) -> None:
    name = f"bench_http_{secrets.token_hex(4)}"
    url = await create_database(name)
    try:
        await upgrade_async(ROOT / "services/payments/alembic.ini", url)
        baseline = await _measure(url, requests, contrib=True)
        current = await _measure(url, requests, contrib=False)
    finally:
        await drop_database(name)
    print(f"cpus: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}  requests per figure: {requests}")
    print(f"{'CPU µs per request':<40}{'no-op':>10}{'signed webhook':>16}")
    print(f"{'contrib OTel instrumentor (baseline)':<40}{baseline['noop']:>10.0f}{baseline['webhook']:>16.0f}")
    print(f"{'servicekit stack as shipped':<40}{current['noop']:>10.0f}{current['webhook']:>16.0f}")
    print(
        f"as shipped / baseline: no-op {current['noop'] / baseline['noop']:.2f}, "
        f"webhook {current['webhook'] / baseline['webhook']:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    uvloop.run(main(parser.parse_args().requests))
