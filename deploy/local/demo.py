"""`make demo`: a scripted walk through the whole system.

By default it starts its own copy of the system (sandbox + the four services as processes, throwaway
databases, its own broker namespace) so it runs beside `make run`; `--running` uses the services of
`make run` on their default ports instead.
"""

from __future__ import annotations

import argparse
import contextlib
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
def system(running: bool) -> Iterator[dict[str, str]]:
    if running:
        yield {
            "orders": "http://127.0.0.1:8000",
            "payments": "http://127.0.0.1:8001",
            "notifications": "http://127.0.0.1:8002",
            "migration-worker": "http://127.0.0.1:8003",
            "sandbox": "http://127.0.0.1:8010",
        }
        return
    from tests.support.system import running_system

    with tempfile.TemporaryDirectory() as tmp, running_system(Path(tmp)) as sys_:
        urls = {name: sys_.url(name) for name in sys_.services}
        urls["sandbox"] = sys_.sandbox_url
        yield urls


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
        f"{urls['payments']}/api/v1/payments/installments/{first['installment_id']}/checkout",
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
    print("\nDemo complete.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--running", action="store_true", help="use the services `make run` started")
    args = parser.parse_args()
    with system(args.running) as urls:
        walk(urls)


if __name__ == "__main__":
    main()
