"""Signed-webhook intake benchmark for the payments service, driven by wrk from a separate process.

Starts payments (`python -m payments`, `--workers` uvicorn worker processes) on a throwaway database and
seeds pending Stripe payments. Every delivery is signed up front (30 % duplicates, shuffled), so the load
generator does no work per request beyond sending a prepared body. Then, against the same server in the
same run, for the same time and connections:

1. the unsigned no-op endpoint (`POST /api/v1/payments/noop`, same bodies): the baseline;
2. signed `payment_intent.succeeded` webhooks to `POST /api/v1/payments/webhooks/stripe`.

It waits until every stored webhook is applied and checks the books: every payment whose webhook the
service acknowledged (its 2xx answer names the event) succeeded, none that wrk never sent did, exactly one
`payment_succeeded` per succeeded payment, installments paid exactly, nothing rejected, failed or
quarantined, no non-2xx answer.

    uv run python bench/payments/webhook_intake.py [--seconds 5] [--workers 1] [--connections 64]
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from sandbox.signing import stripe_signature_header
from servicekit.alembic_env import upgrade
from servicekit.testing import ADMIN_DSN, database_url, delete_namespace, free_port

ROOT = Path(__file__).resolve().parents[2]
NOOP_PATH = "/api/v1/payments/noop"
WEBHOOK_PATH = "/api/v1/payments/webhooks/stripe"

# Each wrk thread takes every n-th prepared line and cycles through its share; `done` reports how many
# requests each thread generated, so the checker knows which deliveries were sent.
WRK_SCRIPT = r"""
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  nthreads = tonumber(args[1])
  signed = args[3] == "signed"
  mine = {}
  local n = 0
  for line in io.lines(args[2]) do
    if n % nthreads == id then
      local tab = line:find("\t", 1, true)
      table.insert(mine, {line:sub(1, tab - 1), line:sub(tab + 1)})
    end
    n = n + 1
  end
  sent = 0
  -- Every acknowledged delivery's event, as the service named it in its 2xx answer: the books must
  -- show each of them booked once.
  acked = io.open(args[4] .. "." .. id, "w")
  acked:setvbuf("line")
end

function response(status, headers, body)
  if status < 300 then
    local event = body:match('"event_key":"([^"]*)"')
    if event then acked:write(event, "\n") end
  end
end

function request()
  local item = mine[sent % #mine + 1]
  sent = sent + 1
  local headers = {["Content-Type"] = "application/json"}
  if signed then headers["Stripe-Signature"] = item[1] end
  return wrk.format("POST", nil, headers, item[2])
end

function done(summary, latency, requests)
  local sent_by_thread = {}
  for i, thread in ipairs(threads) do sent_by_thread[i] = thread:get("sent") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "sent_by_thread": [%s]}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(sent_by_thread, ",")))
end
"""


@dataclass(frozen=True)
class Seeded:
    payment_id: str
    order_id: str
    amount: int
    reference: str


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _delete_broker_namespace(namespace: str) -> None:
    """The queues and exchanges the payments server declared for this run."""
    from payments.bootstrap import create_app
    from payments.settings import Settings

    settings = Settings(broker_namespace=namespace, otel_exporter="none")
    queues = create_app(settings).state.runtime.consumers.queue_names()
    await delete_namespace(namespace, queues, settings.retry_delays_ms)


async def _seed(dsn: str, count: int) -> list[Seeded]:
    """N orders with one open installment and one pending Stripe payment each (as a checkout leaves them)."""
    plans, installments, payments, seeded = [], [], [], []
    for i in range(count):
        plan, inst, pay, order, school = (uuid.uuid4() for _ in range(5))
        amount = 100_000 + i
        ref = f"pi_bench_{i}"
        plans.append((plan, order, school, "full", "USD", amount, "active", "{}"))
        installments.append((inst, plan, order, school, 1, "Full payment", amount, "USD", "at_signing", "open", 0))
        payments.append((pay, inst, order, school, "stripe", "card", amount, "USD", "pending", str(pay), ref, "{}", 0))
        seeded.append(Seeded(str(pay), str(order), amount, ref))
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO payment_plans (id, order_id, school_id, payment_option, currency, total_minor, status,"
                " contact, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,now())",
                plans,
            )
            await conn.executemany(
                "INSERT INTO installments (id, plan_id, order_id, school_id, sequence, label, amount_minor, currency,"
                " due, due_date, status, paid_minor) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,current_date,$10,$11)",
                installments,
            )
            await conn.executemany(
                "INSERT INTO payments (id, installment_id, order_id, school_id, provider, method, amount_minor,"
                " currency, status, idempotency_key, provider_reference, checkout, refunded_minor, created_at,"
                " updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12::jsonb,$13,now(),now())",
                payments,
            )
    finally:
        await conn.close()
    return seeded


def stripe_event(payment: Seeded) -> bytes:
    """A `payment_intent.succeeded` event as Stripe would post it for this payment (unsigned)."""
    return json.dumps(
        {
            "id": f"evt_bench_{payment.reference}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": payment.reference,
                    "object": "payment_intent",
                    "amount": payment.amount,
                    "amount_received": payment.amount,
                    "currency": "usd",
                    "status": "succeeded",
                    "metadata": {"payment_id": payment.payment_id, "order_id": payment.order_id},
                }
            },
        }
    ).encode()


def _wrk(
    url: str, script: Path, bodies: Path, *, signed: bool, seconds: int, threads: int, connections: int
) -> dict[str, object]:
    """One wrk run; the result also holds `acked`: the event ids the service acknowledged with a 2xx."""
    acked = bodies.with_suffix(".signed" if signed else ".unsigned")
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
        "--",
        str(threads),
        str(bodies),
        "signed" if signed else "unsigned",
        str(acked),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, object] = json.loads(line.removeprefix("RESULT "))
    result["per_second"] = int(str(result["requests"])) / (int(str(result["duration_us"])) / 1e6)
    result["acked"] = {event for thread in range(threads) for event in Path(f"{acked}.{thread}").read_text().split()}
    return result


def _sent(events: list[str], threads: int, sent_by_thread: list[int]) -> set[str]:
    """Every event wrk put on the wire (or was about to, when it stopped)."""
    sent: set[str] = set()
    for thread, count in enumerate(sent_by_thread):
        share = events[thread::threads]
        sent.update(share[i % len(share)] for i in range(count))
    return sent


async def _wait_applied(dsn: str, timeout_s: float) -> float:
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout_s:
            if await conn.fetchval("SELECT count(*) FROM webhook_inbox WHERE status = 'received'") == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise RuntimeError(f"webhooks still waiting {timeout_s:.0f} s after intake ended")


async def _books(dsn: str) -> dict[str, object]:
    conn = await asyncpg.connect(dsn)
    try:
        succeeded = {
            r["ref"]
            for r in await conn.fetch("SELECT provider_reference AS ref FROM payments WHERE status = 'succeeded'")
        }
        return {
            "succeeded_refs": succeeded,
            "payments": dict(await conn.fetch("SELECT status, count(*) FROM payments GROUP BY status")),
            "inbox": dict(await conn.fetch("SELECT status, count(*) FROM webhook_inbox GROUP BY status")),
            "installments_paid_exactly": await conn.fetchval(
                "SELECT count(*) FROM installments WHERE status = 'paid' AND paid_minor = amount_minor"
            ),
            "installments_paid_wrongly": await conn.fetchval(
                "SELECT count(*) FROM installments WHERE paid_minor <> 0 AND paid_minor <> amount_minor"
            ),
            "succeeded_events": await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE routing_key = 'payments.payment_succeeded.v1'"
            ),
            "distinct_succeeded": await conn.fetchval(
                "SELECT count(DISTINCT body->'data'->>'payment_id') FROM outbox"
                " WHERE routing_key = 'payments.payment_succeeded.v1'"
            ),
            "intake_span_s": await conn.fetchval(
                "SELECT extract(epoch FROM max(received_at) - min(received_at)) FROM webhook_inbox"
            ),
        }
    finally:
        await conn.close()


def _row(label: str, r: dict[str, object]) -> str:
    us = {k: int(str(r[k])) / 1000 for k in ("p50_us", "p90_us", "p99_us", "max_us")}
    return (
        f"{label:<32}{r['requests']:>9}{float(str(r['per_second'])):>9.0f}"
        f"{us['p50_us']:>9.1f}{us['p90_us']:>9.1f}{us['p99_us']:>9.1f}{us['max_us']:>9.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (replicas) of payments; one per core"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--payments", type=int, default=12_000, help="seeded payments (one event each)")
    parser.add_argument("--duplicates", type=float, default=0.3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run `make bench-tools`")

    name = f"bench_payments_{secrets.token_hex(4)}"
    secret = "whsec_bench_" + secrets.token_hex(8)
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = database_url(name)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    port = free_port()
    server = None
    workdir = Path(tempfile.mkdtemp(prefix="bench_payments_"))
    try:
        upgrade(ROOT / "services/payments/alembic.ini", url)
        seeded = asyncio.run(_seed(dsn, args.payments))
        env = {
            **os.environ,
            "PAYMENTS_DATABASE_URL": url,
            "PAYMENTS_HTTP_PORT": str(port),
            "PAYMENTS_HTTP_WORKERS": str(args.workers),
            "PAYMENTS_STRIPE_WEBHOOK_SECRET": secret,
            "PAYMENTS_SCHEDULER_ENABLED": "false",
            "BROKER_NAMESPACE": f"{name}.",
            "OUTBOX_ENABLED": "false",  # the books are checked in the outbox itself; nothing needs publishing
            "LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen([sys.executable, "-m", "payments"], env=env, cwd=ROOT, start_new_session=True)
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("payments did not start")

        # Signed now, so a delivery is still inside Stripe's 300 s window when it is sent.
        rng = random.Random(7)
        order = seeded + [rng.choice(seeded) for _ in range(int(len(seeded) * args.duplicates))]
        rng.shuffle(order)
        bodies = workdir / "bodies.tsv"
        with bodies.open("w") as out:
            for payment in order:
                body = stripe_event(payment)
                out.write(f"{stripe_signature_header(body, secret)}\t{body.decode()}\n")
        script = workdir / "intake.lua"
        script.write_text(WRK_SCRIPT)

        load_before = os.getloadavg()[0]
        common = {"seconds": args.seconds, "threads": args.threads, "connections": args.connections}
        noop = _wrk(base_url + NOOP_PATH, script, bodies, signed=False, **common)
        signed = _wrk(base_url + WEBHOOK_PATH, script, bodies, signed=True, **common)
        load_after = os.getloadavg()[0]
        drain_s = asyncio.run(_wait_applied(dsn, timeout_s=600))
        books = asyncio.run(_books(dsn))

        refs = [p.reference for p in order]
        possibly = _sent(refs, args.threads, list(signed["sent_by_thread"]))  # type: ignore[call-overload]
        acked = {str(e).removeprefix("evt_bench_") for e in signed["acked"]}  # type: ignore[attr-defined]
        succeeded: set[str] = books.pop("succeeded_refs")  # type: ignore[assignment]
        stored = sum(books["inbox"].values())  # type: ignore[attr-defined]

        print(f"cpus: {os.cpu_count()}  load average before/after the runs: {load_before:.1f}/{load_after:.1f}")
        print(
            f"payments: {args.workers} uvicorn worker(s); wrk: {args.threads} threads, {args.connections} connections,"
            f" {args.seconds} s per endpoint; {len(order)} prepared deliveries ({len(seeded)} events, "
            f"{args.duplicates:.0%} duplicates, shuffled)"
        )
        print(f"{'endpoint':<32}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        print(_row("unsigned no-op (baseline)", noop))
        print(_row("signed Stripe webhook intake", signed))
        ratio = float(str(signed["per_second"])) / float(str(noop["per_second"]))
        print(f"signed intake / no-op: {ratio:.2f}")
        applied_rate = stored / (args.seconds + drain_s)
        print(
            f"{stored} distinct webhooks stored (repeats refused at intake); all applied {drain_s:.1f} s after "
            f"intake ended ({applied_rate:.0f} stored webhooks/s applied end to end)"
        )
        print(f"books: {books}; {len(acked)} distinct events acknowledged")
        problems = []
        if signed["non_2xx"] or signed["socket_errors"] or noop["non_2xx"] or noop["socket_errors"]:
            problems.append("errors or non-2xx answers")
        if not acked <= succeeded <= possibly:
            problems.append(
                f"{len(acked - succeeded)} acknowledged webhooks not booked, {len(succeeded - possibly)} booked unsent"
            )
        if not books["succeeded_events"] == books["distinct_succeeded"] == len(succeeded):
            problems.append("payment_succeeded events not one per succeeded payment")
        if books["installments_paid_exactly"] != len(succeeded) or books["installments_paid_wrongly"]:
            problems.append("installments not paid exactly")
        inbox: dict[str, int] = books["inbox"]  # type: ignore[assignment]
        if set(inbox) - {"applied"}:
            problems.append("inbox rows not applied")
        print(
            f"{len(succeeded)} payments succeeded, each once: zero lost or doubled"
            if not problems
            else "MISMATCH: " + "; ".join(problems)
        )
        if problems:
            sys.exit(1)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(_delete_broker_namespace(f"{name}."))


if __name__ == "__main__":
    main()
