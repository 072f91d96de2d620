"""Signed-webhook intake benchmark for the payments service.

Starts payments (`python -m payments`) on a throwaway database, seeds N Stripe payments, then drives it
from separate client processes on loopback: first the unsigned no-op endpoint (the baseline), then
signed `payment_intent.succeeded` webhooks with 30 % duplicates in shuffled order. Prints webhooks/s and
latency percentiles for both, waits until every stored webhook is applied, and checks the books:
every payment succeeded once, installments paid exactly, one `payment_succeeded` per payment.

    uv run python bench/payments/webhook_intake.py [--payments 2000] [--clients 2] [--concurrency 32]
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from sandbox.signing import stripe_signature_header
from servicekit.alembic_env import upgrade
from servicekit.testing import ADMIN_DSN, database_url

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(dsn: str, count: int) -> list[dict[str, object]]:
    """N orders with one open installment and one pending Stripe payment each (as a checkout leaves them)."""
    conn = await asyncpg.connect(dsn)
    payments = []
    try:
        async with conn.transaction():
            for i in range(count):
                plan, inst, pay, order, school = (uuid.uuid4() for _ in range(5))
                amount = 100_000 + i
                await conn.execute(
                    "INSERT INTO payment_plans (id, order_id, school_id, payment_option, currency, total_minor, status,"
                    " contact, created_at) VALUES ($1,$2,$3,'full','USD',$4,'active','{}',now())",
                    plan,
                    order,
                    school,
                    amount,
                )
                await conn.execute(
                    "INSERT INTO installments (id, plan_id, order_id, school_id, sequence, label, amount_minor,"
                    " currency, due, due_date, status, paid_minor) VALUES ($1,$2,$3,$4,1,'Full payment',$5,'USD',"
                    " 'at_signing', current_date, 'open', 0)",
                    inst,
                    plan,
                    order,
                    school,
                    amount,
                )
                await conn.execute(
                    "INSERT INTO payments (id, installment_id, order_id, school_id, provider, method, amount_minor,"
                    " currency, status, idempotency_key, provider_reference, checkout, refunded_minor, created_at,"
                    " updated_at) VALUES ($1,$2,$3,$4,'stripe','card',$5,'USD','pending',$6,$7,'{}',0,now(),now())",
                    pay,
                    inst,
                    order,
                    school,
                    amount,
                    str(pay),
                    f"pi_bench_{i}",
                )
                payments.append({"id": str(pay), "order": str(order), "amount": amount, "ref": f"pi_bench_{i}"})
    finally:
        await conn.close()
    return payments


def _event(payment: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "id": f"evt_bench_{payment['ref']}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": payment["ref"],
                    "object": "payment_intent",
                    "amount": payment["amount"],
                    "amount_received": payment["amount"],
                    "currency": "usd",
                    "status": "succeeded",
                    "metadata": {"payment_id": payment["id"], "order_id": payment["order"]},
                }
            },
        }
    ).encode()


async def _drive(base_url: str, path: str, bodies: list[bytes], secret: str | None, concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                headers = {"Content-Type": "application/json"}
                if secret:
                    headers["Stripe-Signature"] = stripe_signature_header(body, secret)
                started = time.perf_counter()
                response = await client.post(path, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 300:
                    raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _client_process(args: tuple[str, str, list[bytes], str | None, int]) -> list[float]:
    return asyncio.run(_drive(*args))


def _load(
    base_url: str, path: str, bodies: list[bytes], secret: str | None, clients: int, concurrency: int
) -> dict[str, float]:
    slices = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.map(_client_process, [(base_url, path, s, secret, concurrency) for s in slices])
    elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


async def _wait_applied(dsn: str, timeout_s: float = 600) -> float:
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout_s:
            waiting = await conn.fetchval("SELECT count(*) FROM webhook_inbox WHERE status = 'received'")
            if waiting == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise RuntimeError("webhooks still waiting after the timeout")


async def _books(dsn: str) -> dict[str, object]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            "payments": dict(await conn.fetch("SELECT status, count(*) FROM payments GROUP BY status")),
            "inbox": dict(await conn.fetch("SELECT status, count(*) FROM webhook_inbox GROUP BY status")),
            "installments_exact": await conn.fetchval(
                "SELECT count(*) FROM installments WHERE paid_minor = amount_minor"
            ),
            "succeeded_events": await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE routing_key = 'payments.payment_succeeded.v1'"
            ),
            "distinct_succeeded": await conn.fetchval(
                "SELECT count(DISTINCT body->'data'->>'payment_id') FROM outbox"
                " WHERE routing_key = 'payments.payment_succeeded.v1'"
            ),
        }
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--duplicates", type=float, default=0.3)
    parser.add_argument("--clients", type=int, default=2, help="load-generating processes")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client process")
    args = parser.parse_args()

    name = f"bench_payments_{secrets.token_hex(4)}"
    secret = "whsec_bench_" + secrets.token_hex(8)
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = database_url(name)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    port = _free_port()
    server = None
    try:
        upgrade(ROOT / "services/payments/alembic.ini", url)
        payments = asyncio.run(_seed(dsn, args.payments))
        env = {
            **os.environ,
            "PAYMENTS_DATABASE_URL": url,
            "PAYMENTS_HTTP_PORT": str(port),
            "PAYMENTS_STRIPE_WEBHOOK_SECRET": secret,
            "PAYMENTS_SCHEDULER_ENABLED": "false",
            "BROKER_NAMESPACE": f"{name}.",
            "OUTBOX_ENABLED": "false",  # the books are checked in the outbox itself; nothing needs publishing
            "LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen([sys.executable, "-m", "payments"], env=env, cwd=ROOT)
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("payments did not start")

        unique = [_event(p) for p in payments]
        rng = random.Random(7)
        bodies = unique + [rng.choice(unique) for _ in range(int(len(unique) * args.duplicates))]
        rng.shuffle(bodies)

        noop = _load(base_url, "/api/v1/payments/noop", bodies, None, args.clients, args.concurrency)
        signed = _load(base_url, "/api/v1/payments/webhooks/stripe", bodies, secret, args.clients, args.concurrency)
        drain_s = asyncio.run(_wait_applied(dsn))
        books = asyncio.run(_books(dsn))

        print(f"cpus: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}")
        print(f"{'endpoint':<34}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
        for label, r in (("unsigned no-op (baseline)", noop), ("signed Stripe webhook intake", signed)):
            print(f"{label:<34}{r['requests']:>9}{r['per_second']:>9.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}")
        applied_rate = len(bodies) / (signed["seconds"] + drain_s)
        print(
            f"all {len(bodies)} webhooks verified and applied {drain_s:.1f} s after intake ended "
            f"({applied_rate:.0f} webhooks/s end to end)"
        )
        print(f"books: {books}")
        ok = (
            books["payments"] == {"succeeded": args.payments}
            and books["installments_exact"] == args.payments
            and books["succeeded_events"] == books["distinct_succeeded"] == args.payments
        )
        print("zero lost or doubled payments" if ok else "MISMATCH: payments lost or doubled")
        if not ok:
            sys.exit(1)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
