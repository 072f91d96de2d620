"""Many webhooks, duplicated and shuffled; a crash between storing and applying."""

import asyncio
import json
import random
import time
from typing import Any

import pytest
from sandbox.signing import stripe_signature_header
from sqlalchemy import text

from ..conftest import PaymentsHarness, eventually, first_installment, payment_status

pytestmark = pytest.mark.integration
SECRET = "whsec_sandbox_dev_secret"
ORDERS = 100
EVENTS_PER_PAYMENT = 7  # processing, failed, succeeded and four types we do not act on


def _signed_event(event_id: str, event_type: str, payment: dict[str, Any], order_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": payment["provider_reference"],
                    "object": "payment_intent",
                    "amount": payment["amount"]["amount_minor"],
                    "amount_received": payment["amount"]["amount_minor"] if event_type.endswith("succeeded") else 0,
                    "currency": payment["amount"]["currency"].lower(),
                    "metadata": {"payment_id": payment["payment_id"], "order_id": order_id},
                    "last_payment_error": {"message": "Your card was declined."}
                    if event_type.endswith("failed")
                    else None,
                }
            },
        }
    ).encode()


async def test_storm_of_duplicated_shuffled_webhooks_books_each_payment_once(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started: list[tuple[dict[str, Any], str]] = []
    for i in range(ORDERS):
        installment = await first_installment(payments, admin, total={"amount_minor": 100_000 + i, "currency": "USD"})
        response = await payments.client.post(
            f"/api/v1/payments/installments/{installment['id']}/checkout", json={"provider": "stripe"}, headers=admin
        )
        assert response.status_code == 201, response.text
        started.append((response.json(), installment["order_id"]))

    types = [
        "payment_intent.processing",
        "payment_intent.payment_failed",
        "payment_intent.succeeded",
        "payment_intent.created",
        "payment_intent.requires_action",
        "charge.updated",
        "payment_intent.amount_capturable_updated",
    ]
    unique = [
        _signed_event(f"evt_storm_{n}_{t}", t, payment, order_id)
        for n, (payment, order_id) in enumerate(started)
        for t in types
    ]
    rng = random.Random(4)
    deliveries = unique + [rng.choice(unique) for _ in range(300)]
    rng.shuffle(deliveries)
    assert len(deliveries) == 1_000

    gate = asyncio.Semaphore(20)

    async def deliver(body: bytes) -> int:
        async with gate:
            response = await payments.client.post(
                "/api/v1/payments/webhooks/stripe",
                content=body,
                headers={"Stripe-Signature": stripe_signature_header(body, SECRET), "Content-Type": "application/json"},
            )
            return response.status_code

    codes = await asyncio.gather(*(deliver(body) for body in deliveries))
    assert set(codes) == {200}

    async def all_applied() -> bool:
        async with payments.runtime.db.engine.connect() as conn:
            waiting = (
                await conn.execute(text("SELECT count(*) FROM webhook_inbox WHERE status = 'received'"))
            ).scalar_one()
        return waiting == 0

    await eventually(all_applied, attempts=2_000)
    async with payments.runtime.db.engine.connect() as conn:
        statuses = dict((await conn.execute(text("SELECT status, count(*) FROM payments GROUP BY status"))).all())
        paid = (await conn.execute(text("SELECT sum(paid_minor), sum(amount_minor) FROM installments"))).one()
        overpaid = (
            await conn.execute(text("SELECT count(*) FROM installments WHERE paid_minor <> amount_minor"))
        ).scalar_one()
        inbox = dict((await conn.execute(text("SELECT status, count(*) FROM webhook_inbox GROUP BY status"))).all())
    assert statuses == {"succeeded": ORDERS}
    assert paid[0] == paid[1] == sum(100_000 + i for i in range(ORDERS))
    assert overpaid == 0
    # Each distinct event is stored once: a repeat of a verified delivery is refused by the INSERT itself.
    assert sum(inbox.values()) == len(unique) == 700
    assert inbox.get("failed", 0) == 0
    assert inbox.get("quarantined", 0) == 0

    succeeded = await payments.spy.wait_for("payments.payment_succeeded", ORDERS)
    await asyncio.sleep(0.3)
    await payments.spy.drain()
    ids = [e["data"]["payment_id"] for e in payments.spy.of("payments.payment_succeeded")]
    assert len(ids) == ORDERS == len(set(ids)) == len(succeeded)


async def test_webhook_stored_before_a_crash_is_applied_once_after_restart(
    make_payments: Any, admin: dict[str, str]
) -> None:
    first = await make_payments(webhook_worker_enabled=False)  # stores, never applies: then "crashes"
    installment = await first_installment(first, admin)
    response = await first.client.post(
        f"/api/v1/payments/installments/{installment['id']}/checkout", json={"provider": "stripe"}, headers=admin
    )
    started = response.json()
    answer = await first.sandbox_call(
        "POST", f"/_sandbox/stripe/payment_intents/{started['provider_reference']}/succeed", json={"duplicates": 2}
    )

    callback_id = answer["event"]["sandbox_callback_id"]

    async def delivered(times: int) -> list[int] | None:
        callback = await first.sandbox_call("GET", f"/_sandbox/callbacks/{callback_id}")
        codes = [a["status_code"] for a in callback["attempts"]]
        return codes if len(codes) >= times else None

    assert await eventually(lambda: delivered(3)) == [200, 200, 200]  # the repeats are answered, not stored
    async with first.runtime.db.engine.connect() as conn:
        stored = dict((await conn.execute(text("SELECT status, count(*) FROM webhook_inbox GROUP BY status"))).all())
    assert stored == {"received": 1}
    await first.stop()

    second = await make_payments()
    await payment_status(second, admin, started["payment_id"], "succeeded")
    await second.sandbox_call("POST", f"/_sandbox/callbacks/{callback_id}/replay", json={})
    assert await eventually(lambda: delivered(4)) == [200, 200, 200, 200]
    async with second.runtime.db.engine.connect() as conn:
        rows = dict((await conn.execute(text("SELECT status, count(*) FROM webhook_inbox GROUP BY status"))).all())
    assert rows == {"applied": 1}
    await asyncio.sleep(0.3)
    succeeded = await second.spy.wait_for("payments.payment_succeeded")
    assert [e["data"]["payment_id"] for e in succeeded] == [started["payment_id"]]
