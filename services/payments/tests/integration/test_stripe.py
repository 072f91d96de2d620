"""Stripe end to end over real HTTP: checkout in the sandbox, signed webhooks, tampering refused."""

import json
import time
from typing import Any

import httpx
import pytest
from payments.adapters.tables import PaymentRow
from sandbox.signing import stripe_signature_header

from ..conftest import PaymentsHarness, checkout, eventually, first_installment, inbox, payment_status

pytestmark = pytest.mark.integration
SECRET = "whsec_sandbox_dev_secret"


async def _stripe_checkout(
    payments: PaymentsHarness,
    admin: dict[str, str],
    *,
    installment: dict[str, Any] | None = None,
    attempt: str = "try",
    **order: Any,
) -> dict[str, Any]:
    """A Stripe checkout for a fresh order's first installment, or for `installment` (another attempt)."""
    installment = installment or await first_installment(payments, admin, **order)
    key = f"{attempt}-{installment['id']}"
    return await checkout(payments, admin, installment, idempotency_key=key, provider="stripe")


async def _signed(payments: PaymentsHarness, body: bytes) -> httpx.Response:
    """The body posted to our Stripe webhook, signed with the sandbox's secret."""
    return await payments.client.post(
        "/api/v1/payments/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": stripe_signature_header(body, SECRET), "Content-Type": "application/json"},
    )


async def _quarantined(payments: PaymentsHarness, admin: dict[str, str], count: int = 1) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        rows = await inbox(payments, admin, status="quarantined")
        return rows if len(rows) == count else None

    return await eventually(probe)


async def test_card_payment_is_booked_from_the_signed_webhook(payments: PaymentsHarness, admin: dict[str, str]) -> None:
    started = await _stripe_checkout(payments, admin)
    assert started["status"] == "pending"
    assert started["client_secret"].startswith(started["provider_reference"])

    await payments.sandbox_call(
        "POST", f"/_sandbox/stripe/payment_intents/{started['provider_reference']}/succeed", json={}
    )
    payment = await payment_status(payments, admin, started["payment_id"], "succeeded")

    [event] = await payments.spy.wait_for("payments.payment_succeeded")
    assert event["data"]["payment_id"] == started["payment_id"]
    assert event["data"]["amount"] == payment["amount"]
    assert event["data"]["plan_fully_paid"] is True
    plan = (await payments.client.get(f"/api/v1/payments/orders/{payment['order_id']}/plan", headers=admin)).json()
    assert plan["status"] == "paid"
    assert plan["paid"] == plan["total"]


async def test_retried_checkout_with_the_same_key_is_one_payment(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _stripe_checkout(payments, admin)
    again = await payments.client.post(
        f"/api/v1/payments/installments/{started['installment']['id']}/checkout",
        json={"provider": "stripe"},
        headers={**admin, "Idempotency-Key": f"try-{started['installment']['id']}"},
    )
    assert again.status_code == 201
    assert again.json()["payment_id"] == started["payment_id"]
    assert again.json()["provider_reference"] == started["provider_reference"]
    intents = await payments.sandbox_call("GET", "/_sandbox/stripe/payment_intents")
    assert [pi["id"] for pi in intents].count(started["provider_reference"]) == 1
    assert len(intents) == 1


def _event(started: dict[str, Any], event_type: str = "payment_intent.succeeded", **obj: Any) -> bytes:
    body = {
        "id": f"evt_test_{started['payment_id'][:8]}_{event_type}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {
            "object": {
                "id": started["provider_reference"],
                "object": "payment_intent",
                "amount": started["amount"]["amount_minor"],
                "amount_received": started["amount"]["amount_minor"],
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"payment_id": started["payment_id"], "order_id": started["installment"]["order_id"]},
                **obj,
            }
        },
    }
    return json.dumps(body).encode()


def _tampered(body: bytes) -> dict[str, tuple[bytes, dict[str, str]]]:
    now = int(time.time())
    good = stripe_signature_header(body, SECRET)
    return {
        "wrong secret": (body, {"Stripe-Signature": stripe_signature_header(body, SECRET + "x")}),
        "body changed after signing": (body.replace(b'"usd"', b'"eur"'), {"Stripe-Signature": good}),
        # A minute past the 300 s window either side: a loaded machine can take seconds to deliver.
        "stale timestamp": (body, {"Stripe-Signature": stripe_signature_header(body, SECRET, now - 360)}),
        "future timestamp": (body, {"Stripe-Signature": stripe_signature_header(body, SECRET, now + 360)}),
        "no signature": (body, {}),
        "garbage header": (body, {"Stripe-Signature": "t=abc,v1=zzz"}),
        "signature of another body": (body, {"Stripe-Signature": stripe_signature_header(b"{}", SECRET)}),
    }


async def test_every_kind_of_tampering_is_refused_kept_and_never_applied(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _stripe_checkout(payments, admin)
    cases = _tampered(_event(started))
    for name, (body, headers) in cases.items():
        response = await payments.client.post(
            "/api/v1/payments/webhooks/stripe", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, name
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"], name
    rejected = await inbox(payments, admin, status="rejected")
    assert len(rejected) == len(cases)
    assert all(r["reason"] for r in rejected)
    payment = (await payments.client.get(f"/api/v1/payments/{started['payment_id']}", headers=admin)).json()
    assert payment["status"] == "pending"

    valid = _event(started)
    ok = await _signed(payments, valid)
    assert ok.status_code == 200
    await payment_status(payments, admin, started["payment_id"], "succeeded")


async def test_amount_currency_and_order_mismatches_are_quarantined(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _stripe_checkout(payments, admin)
    wrong = {
        "amount": _event(started, amount_received=1, amount=1),
        "currency": _event(started, currency="eur"),
        "order": _event(
            started, metadata={"payment_id": started["payment_id"], "order_id": "00000000-0000-0000-0000-000000000001"}
        ),
        "unknown payment": _event(started, id="pi_unknown", metadata={}),
    }
    for kind, body in wrong.items():
        body = body.replace(b"evt_test_", f"evt_{kind.replace(' ', '_')}_".encode())
        response = await _signed(payments, body)
        assert response.status_code == 200, kind
    await payments.app.worker.drain()

    rows = await _quarantined(payments, admin, count=4)
    reasons = " | ".join(r["reason"] for r in rows)
    assert "amount mismatch" in reasons
    assert "order mismatch" in reasons
    assert "unknown payment" in reasons
    payment = (await payments.client.get(f"/api/v1/payments/{started['payment_id']}", headers=admin)).json()
    assert payment["status"] == "pending"
    await payments.spy.drain()
    assert payments.spy.of("payments.payment_succeeded") == []


async def _post_event(payments: PaymentsHarness, body: bytes) -> None:
    response = await _signed(payments, body)
    assert response.status_code == 200, response.text
    await payments.app.worker.drain()


async def test_money_for_a_cancelled_attempt_is_quarantined(payments: PaymentsHarness, admin: dict[str, str]) -> None:
    started = await _stripe_checkout(payments, admin)
    await _post_event(payments, _event(started, "payment_intent.canceled", status="canceled"))
    await payment_status(payments, admin, started["payment_id"], "cancelled")
    await _post_event(payments, _event(started))

    [row] = await _quarantined(payments, admin)
    assert "cancelled attempt" in row["reason"]
    await payments.spy.drain()
    assert payments.spy.of("payments.payment_succeeded") == []


async def test_a_second_attempt_paid_for_a_paid_installment_is_quarantined_not_credited(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    first = await _stripe_checkout(payments, admin)
    second = await _stripe_checkout(payments, admin, installment=first["installment"], attempt="another")
    assert second["payment_id"] != first["payment_id"]
    for started in (first, second):
        await _post_event(payments, _event(started))
    paid = await payment_status(payments, admin, first["payment_id"], "succeeded")

    [row] = await _quarantined(payments, admin)
    assert "installment already paid" in row["reason"]
    second_payment = (await payments.client.get(f"/api/v1/payments/{second['payment_id']}", headers=admin)).json()
    assert second_payment["status"] == "pending"
    [event] = await payments.spy.wait_for("payments.payment_succeeded")
    assert event["data"]["payment_id"] == first["payment_id"]
    plan = (await payments.client.get(f"/api/v1/payments/orders/{paid['order_id']}/plan", headers=admin)).json()
    assert plan["paid"] == plan["total"]


@pytest.mark.parametrize("obj", [[], {"id": "pi_x", "metadata": "not a map"}, {"id": "pi_x", "last_payment_error": 1}])
async def test_a_signed_but_malformed_event_is_a_400_not_a_crash(payments: PaymentsHarness, obj: Any) -> None:
    body = json.dumps(
        {"id": "evt_malformed", "object": "event", "type": "payment_intent.payment_failed", "data": {"object": obj}}
    ).encode()
    response = await _signed(payments, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_webhook_for_an_unknown_provider_is_a_404_and_stores_nothing(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    response = await payments.client.post("/api/v1/payments/webhooks/mpesa", content=b'{"status": "paid"}')
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "mpesa" in response.json()["detail"]
    assert await inbox(payments, admin) == []


async def test_a_card_declined_at_checkout_is_failed_through_the_ledger(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    installment = await first_installment(payments, admin)
    started = await checkout(payments, admin, installment, provider="stripe", payment_method="pm_card_chargeDeclined")
    assert started["status"] == "failed"
    [event] = await payments.spy.wait_for("payments.payment_failed")
    assert event["data"]["payment_id"] == started["payment_id"]
    assert event["data"]["reason"]


async def test_a_webhook_racing_its_own_checkout_is_applied_once_the_checkout_commits(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _stripe_checkout(payments, admin)
    table: Any = PaymentRow.__table__  # type: ignore[attr-defined]
    async with payments.runtime.db.engine.begin() as conn:  # as seen while the checkout has not committed
        row = dict(
            (await conn.execute(table.delete().where(table.c.id == started["payment_id"]).returning(table)))
            .one()
            ._mapping
        )
    await _post_event(payments, _event(started))

    [waiting] = await inbox(payments, admin)
    assert waiting["status"] == "received"  # tried, and waiting to be tried again
    assert "not (yet) in our books" in waiting["reason"]
    async with payments.runtime.db.engine.begin() as conn:  # the checkout commits
        await conn.execute(table.insert().values(**row))
    await payment_status(payments, admin, started["payment_id"], "succeeded")
    [applied] = await inbox(payments, admin)
    assert applied["status"] == "applied"
