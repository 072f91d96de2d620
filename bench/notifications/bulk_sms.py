"""Bulk send of 10,000 SMS through the sandbox, end to end, beside the sandbox's raw accept rate.

- Baseline: the sandbox process alone, 10,000 TelOne API calls from a pool of concurrent clients
  (the same concurrency the dispatcher uses): the most the provider side can take on this machine.
- Notifications: one POST /api/v1/notifications/bulk with 10,000 recipients (rate limits raised);
  timed until progress reports every message accepted by the provider. That path includes the
  outbox and broker fan-out in chunks, planning (render, encrypt, insert), the dispatcher's claims,
  the provider calls, and recording each outcome with its outbox event.

The sandbox runs as its own process (as in production, the provider is not in our process).
With --dispatcher-only the broker is left out: the messages are planned straight into the database
(as the chunk consumer would) and only the dispatcher's send path is timed.

Usage: uv run python bench/notifications/bulk_sms.py [--messages 10000] [--dispatcher-only]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
from faststream.rabbit import RabbitQueue
from notifications.adapters.repository import Recipient, insert_messages
from notifications.bootstrap import ROUTERS, build
from notifications.service_layer.planning import MessageSpec
from notifications.settings import Settings
from servicekit.alembic_env import upgrade_async
from servicekit.auth import issue_token
from servicekit.runtime import ServiceRuntime
from servicekit.settings import DEV_JWT_SECRET
from servicekit.testing import create_database, delete_namespace, delete_queues, drop_database, free_port, unique_name
from servicekit.topology import events_exchange

ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = ROOT / "services/notifications/alembic.ini"
CONCURRENCY = 32


async def _wait_up(base: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                if (await http.get(f"{base}/_sandbox/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("sandbox did not start")


def _settings(url: str, namespace: str, base: str, smtp_port: int) -> Settings:
    return Settings(
        database_url=url,
        broker_namespace=namespace,
        log_json=False,
        log_level="WARNING",
        telone_base_url=f"{base}/telone/v1",
        econet_base_url=f"{base}/econet/v1",
        smtp_port=smtp_port,
        telone_rate_per_hour=1_000_000,
        econet_rate_per_hour=1_000_000,
        dispatcher_concurrency=CONCURRENCY,
        dispatcher_batch_size=200,
        dispatcher_poll_seconds=0.2,
        outbox_poll_seconds=0.2,
    )


async def _bind_sink(runtime: ServiceRuntime) -> str:
    """Stands in for the services that consume notification_sent (the relay publishes `mandatory`)."""
    name = f"{runtime.settings.broker_namespace}bench-sink"
    queue = await runtime.broker.declare_queue(RabbitQueue(name))
    exchange = await runtime.broker.declare_exchange(events_exchange(runtime.naming))
    for event in ("notification_sent", "notification_failed", "notification_delivered"):
        await queue.bind(exchange, routing_key=f"notifications.{event}.v1")
    return name


async def raw_accept_rate(base: str, n: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                r = await http.post(
                    "/telone/v1/sms",
                    json={"to": f"+26377{3000000 + i}", "message": "School closes on Friday.", "sender_id": "ONECLASS"},
                    headers={"X-API-Key": "telone-sandbox-key"},
                )
                r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return n / (time.perf_counter() - started)


async def end_to_end_rate(base: str, n: int, smtp_port: int) -> tuple[float, dict[str, Any]]:
    name = unique_name("bench_notifications")
    url = await create_database(name)
    await upgrade_async(ALEMBIC_INI, url)
    namespace = unique_name("bn") + "."
    settings = _settings(url, namespace, base, smtp_port)
    runtime, components = build(settings)
    app = runtime.create_app(title="notifications", routers=ROUTERS)
    app.state.components = components
    await runtime.start()
    sink = await _bind_sink(runtime)
    token = issue_token(DEV_JWT_SECRET, sub="bench", role="platform_admin")
    headers = {"Authorization": f"Bearer {token}"}
    recipients = [{"name": f"Parent {i}", "phone": f"+26371{4000000 + i}"} for i in range(n)]
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://notifications", timeout=120
        ) as client:
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/notifications/bulk",
                json={"channel": "sms", "text": "School closes on Friday.", "recipients": recipients},
                headers=headers,
            )
            response.raise_for_status()
            bulk_id = response.json()["id"]
            deadline = started + 600
            while True:
                progress: dict[str, Any] = (
                    await client.get(f"/api/v1/notifications/bulk/{bulk_id}", headers=headers)
                ).json()
                if progress["status"] == "completed" or time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.25)
            elapsed = time.perf_counter() - started
    finally:
        await runtime.stop()
        await delete_queues([sink])
        await delete_namespace(namespace, runtime.consumers.queue_names(), settings.retry_delays_ms)
        await drop_database(name)
    return n / elapsed, progress


async def dispatcher_rate(base: str, n: int) -> tuple[float, dict[str, Any]]:
    name = unique_name("bench_notifications")
    url = await create_database(name)
    await upgrade_async(ALEMBIC_INI, url)
    settings = _settings(url, unique_name("bn") + ".", base, 0)
    runtime, components = build(settings)
    spec = MessageSpec(
        event_id=uuid4(),
        event_type="bench",
        template="bulk_message",
        variables={"subject": "OneClass", "text": "School closes on Friday."},
        channels=("sms",),
    )
    recipients = [Recipient(UUID(int=0), f"Parent {i}", "en", f"+26371{4000000 + i}", None) for i in range(n)]
    try:
        async with runtime.db.transaction() as session:
            rows = await components.planner.build_rows(session, spec, recipients)
            for start in range(0, len(rows), 1000):
                await insert_messages(session, rows[start : start + 1000])
        started = time.perf_counter()
        done = 0
        while done < n:
            done += await components.dispatcher.dispatch_once()
        elapsed = time.perf_counter() - started
    finally:
        await components.http.aclose()
        await components.webhooks.http.aclose()
        await components.redis.aclose()
        await runtime.db.dispose()
        await drop_database(name)
    return n / elapsed, {"counts": {"sent": done}, "status": "completed"}


async def measure(base: str, smtp_port: int, n: int, dispatcher_only: bool) -> None:
    await _wait_up(base)
    raw = await raw_accept_rate(base, n)
    async with httpx.AsyncClient(base_url=base) as http:
        await http.post("/_sandbox/reset")
    if dispatcher_only:
        rate, progress = await dispatcher_rate(base, n)
    else:
        rate, progress = await end_to_end_rate(base, n, smtp_port)
    async with httpx.AsyncClient(base_url=base) as http:
        accepted = (await http.get("/_sandbox/sms/count")).json()["count"]
    print(f"messages: {n}, provider calls concurrency: {CONCURRENCY}, cores: {os.cpu_count()}")
    print(f"sandbox raw accept rate (baseline):   {raw:8.0f} SMS/s")
    label = "notifications dispatcher only:" if dispatcher_only else "notifications bulk, end to end:"
    print(f"{label:38} {rate:8.0f} SMS/s  ({rate / raw:.0%} of the baseline)")
    print(f"accepted by the sandbox: {accepted}, final counts: {progress['counts']}, status: {progress['status']}")
    if accepted != n or progress["status"] != "completed":
        raise SystemExit("not every message was sent exactly once")


def main(n: int, dispatcher_only: bool) -> None:
    port, smtp_port = free_port(), free_port()
    env = {
        **os.environ,
        "SANDBOX_PORT": str(port),
        "SANDBOX_SMTP_PORT": str(smtp_port),
        "SANDBOX_SMS_DELIVERY_REPORTS": "false",  # no callback receiver in this run
    }
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "sandbox"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        asyncio.run(measure(f"http://127.0.0.1:{port}", smtp_port, n, dispatcher_only))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--dispatcher-only", action="store_true", help="leave the broker out (see above)")
    args = parser.parse_args()
    main(args.messages, args.dispatcher_only)
