"""`make demo`: a scripted walk through the whole system.

By default it starts its own copy of the system (sandbox + the four services as processes, throwaway
databases, its own broker namespace) so it runs beside `make run`; `--running` uses the services of
`make run` on their default ports instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from servicekit.auth import issue_token  # noqa: E402
from servicekit.settings import ServiceSettings  # noqa: E402


def step(text: str) -> None:
    print(f"\n\033[1m▶ {text}\033[0m", flush=True)


def show(label: str, value: Any) -> None:
    print(f"  {label}: {value}")


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise SystemExit(f"demo stopped: {what} did not happen within {timeout:.0f}s")


@contextlib.contextmanager
def system(running: bool, migration_workers: int) -> Iterator[dict[str, str]]:
    """URLs of the services, plus the broker namespace and the migration target database (keys `_ns`, `_target`)."""
    if running:
        from migration_worker.settings import Settings as MigrationSettings

        yield {
            "orders": "http://127.0.0.1:8000",
            "payments": "http://127.0.0.1:8001",
            "notifications": "http://127.0.0.1:8002",
            "migration-worker": "http://127.0.0.1:8003",
            "sandbox": "http://127.0.0.1:8010",
            "_ns": ServiceSettings().broker_namespace,
            "_target": MigrationSettings().target_dsn,
        }
        return
    from servicekit.testing import database_url

    from tests.support.system import running_system

    target_db = f"demo_target_{secrets.token_hex(3)}"
    target = database_url(target_db, driver="postgresql")
    # Small batches so that a demo-sized export still makes enough batch messages to share out.
    env = {"MIGRATIONS_TARGET_DATABASE_URL": target, "MIGRATIONS_BATCH_SIZE": "500"}
    try:
        with tempfile.TemporaryDirectory() as tmp, running_system(Path(tmp), **env) as sys_:
            for replica in range(1, migration_workers):  # more migration-worker replicas, stopped with the rest
                process = sys_.service_process("migration-worker", replica=replica)
                sys_.processes[process.name] = process
                process.start()
            urls = {name: sys_.url(name) for name in sys_.services}
            urls["sandbox"] = sys_.sandbox_url
            yield {**urls, "_ns": sys_.namespace, "_target": target}
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{target_db}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    import asyncpg
    from servicekit.testing import ADMIN_DSN

    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def walk(urls: dict[str, str]) -> None:
    secret = ServiceSettings().auth_jwt_secret.get_secret_value()
    school = uuid4()
    school_auth = {
        "Authorization": f"Bearer {issue_token(secret, sub='head@demo', role='school_admin', school_id=school)}"
    }
    admin_auth = {"Authorization": f"Bearer {issue_token(secret, sub='ops@oneclass', role='platform_admin')}"}
    phone = f"+26377{uuid4().int % 10**7:07d}"
    http = httpx.Client(timeout=10)

    step("A school admin orders Growth + rush migration, paying in two halves")
    created = http.post(
        f"{urls['orders']}/api/v1/migration-services/orders",
        headers=school_auth,
        json={
            "package_code": "growth",
            "student_count": 450,
            "add_ons": ["rush_migration"],
            "payment_option": "split",
            "currency": "USD",
            "contact": {"name": "Head Teacher", "phone": phone, "email": "head@demo.example", "language": "en"},
        },
    )
    created.raise_for_status()
    order = created.json()
    show("order", f"{order['id']} status={order['status']} total={order['total']}")

    step("Payments builds the plan from order_created")
    plan = eventually(
        lambda: (
            (
                r := http.get(f"{urls['payments']}/api/v1/payments/orders/{order['id']}/plan", headers=school_auth)
            ).status_code
            == 200
            and r.json()
        ),
        "the payment plan",
    )
    for item in plan["installments"]:
        show(f"installment {item['sequence']}", f"{item['amount']} due {item.get('due')}")

    step("Notifications sends the school an SMS through the sandbox")
    sms = eventually(lambda: http.get(f"{urls['sandbox']}/_sandbox/sms", params={"to": phone}).json(), "the SMS")
    show("SMS", sms[0].get("text") or sms[0])

    step("The school pays the first half by card (Stripe, in the sandbox)")
    first = plan["installments"][0]
    checkout = http.post(
        f"{urls['payments']}/api/v1/payments/installments/{first['id']}/checkout",
        headers={**school_auth, "Idempotency-Key": str(uuid4())},
        json={"provider": "stripe"},
    )
    checkout.raise_for_status()
    intent = checkout.json()["provider_reference"]
    show("checkout", checkout.json())
    http.post(f"{urls['sandbox']}/_sandbox/stripe/payment_intents/{intent}/succeed", json={}).raise_for_status()
    payment = eventually(
        lambda: (
            (r := http.get(f"{urls['payments']}/api/v1/payments/{checkout.json()['payment_id']}", headers=admin_auth))
            .json()
            .get("status")
            == "succeeded"
            and r.json()
        ),
        "the verified Stripe webhook",
    )
    show("payment", f"{payment['status']} {payment['amount']}")

    step("A platform admin approves, assigns the team and starts the work")
    base = f"{urls['orders']}/api/v1/migration-services/orders/{order['id']}"
    show("approved", http.patch(f"{base}/status", headers=admin_auth, json={"status": "approved"}).json()["status"])
    http.post(
        f"{base}/team", headers=admin_auth, json={"members": ["tendai", "rudo"], "lead": "tendai"}
    ).raise_for_status()
    started = eventually(
        lambda: (
            (r := http.patch(f"{base}/status", headers=admin_auth, json={"status": "in_progress"})).status_code == 200
            and r.json()
        ),
        "the signing payment to reach orders",
    )
    show("status", started["status"])
    milestones = http.get(f"{base}/milestones", headers=admin_auth).json()
    show("milestones", ", ".join(m["name"] for m in milestones))

    step("An illegal move is refused with the allowed ones")
    refused = http.patch(f"{base}/status", headers=admin_auth, json={"status": "completed"})
    show(f"HTTP {refused.status_code}", refused.json().get("detail"))

    step("The communication log for the order")
    log = http.get(
        f"{urls['notifications']}/api/v1/notifications/messages", params={"order_id": order["id"]}, headers=admin_auth
    )
    items = log.json().get("items", log.json()) if isinstance(log.json(), dict) else log.json()
    for message in items[:10]:
        show(message.get("channel", "?"), f"{message.get('template')} → {message.get('status')}")


async def _prepare_target(dsn: str, ddl: str) -> None:
    """The plan's tables in the migration target (created, database and all, if missing)."""
    import asyncpg

    database = dsn.rsplit("/", 1)[1].split("?")[0]
    with contextlib.suppress(asyncpg.DuplicateDatabaseError):
        await _admin(f'CREATE DATABASE "{database}"')
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(ddl)
    finally:
        await conn.close()


async def _send_start_job(namespace: str, command: Any) -> None:
    """What orders sends when an order enters data_migration, published the same way (events exchange)."""
    from contracts.envelope import Envelope
    from faststream.rabbit import RabbitBroker
    from servicekit.topology import Naming, events_exchange

    envelope = Envelope.wrap(command, school_id=command.school_id)
    broker = RabbitBroker(ServiceSettings().amqp_url)
    await broker.connect()
    try:
        await broker.publish(
            envelope.model_dump_json(),
            exchange=events_exchange(Naming(namespace)),
            routing_key=envelope.routing_key,
            message_id=str(envelope.event_id),
            content_type="application/json",
            persist=True,
        )
    finally:
        await broker.stop()


def migrate(urls: dict[str, str], students: int) -> None:
    from contracts.migrations import DataSource, StartJob
    from migration_worker.plans import SHIPPED

    step(f"A legacy school export ({students:,} students) is migrated; its batches spread over the worker replicas")
    shipped = SHIPPED["school-sis"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "school-sis"
        counts = shipped.generate(folder, students)
        show("export", ", ".join(f"{name} {rows:,}" for name, rows in counts.items()))
        asyncio.run(_prepare_target(urls["_target"], shipped.target_ddl))
        school = uuid4()
        command = StartJob(
            job_id=uuid4(),
            order_id=uuid4(),
            school_id=school,
            plan="school-sis",
            data_sources=[DataSource(source_id=uuid4(), kind="csv", name="SIS export", location=folder.as_uri())],
        )
        asyncio.run(_send_start_job(urls["_ns"], command))
        http = httpx.Client(timeout=10)
        job_url = f"{urls['migration-worker']}/api/v1/migrations/jobs/{command.job_id}"
        seen: dict[str, Any] = {}

        def finished() -> dict[str, Any] | None:
            response = http.get(job_url)
            if response.status_code != 200:
                return None
            job = response.json()
            progress = (job.get("progress") or {}).get("phase"), job.get("status")
            if progress != seen.get("last"):
                seen["last"] = progress
                show("job", f"{job['status']} {(job.get('progress') or {}).get('phase') or ''}")
            return job if job["status"] in ("completed", "failed") else None

        job = eventually(finished, "the migration job", timeout=600)
    report = job.get("report") or {}
    show("result", f"{job['status']}: {report.get('rows_migrated', 0):,} of {report.get('rows_total', 0):,} rows "
         f"migrated, {report.get('rows_rejected', 0):,} rejected with reasons")  # fmt: skip
    workers = job.get("workers") or {}
    total = sum(w["batches"] for w in workers.values()) or 1
    for name, counts in sorted(workers.items()):
        show(f"worker {name}", f"{counts['batches']:>3} batches ({100 * counts['batches'] / total:.0f} %), "
             f"{counts['rows']:,} rows")  # fmt: skip
    show("report", f"{job_url}/report?format=html")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--running", action="store_true", help="use the services `make run` started")
    parser.add_argument(
        "--migration-workers", type=int, default=3, help="migration-worker replicas of the demo's own system"
    )
    parser.add_argument("--students", type=int, default=3000, help="size of the legacy school export to migrate")
    parser.add_argument("--migration-only", action="store_true", help="only the migration part")
    args = parser.parse_args()
    with system(args.running, args.migration_workers) as urls:
        if not args.migration_only:
            walk(urls)
        migrate(urls, args.students)
    print("\nDemo complete.")


if __name__ == "__main__":
    main()
