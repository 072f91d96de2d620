"""PayNow and EcoCash end to end over real HTTP to the sandbox: money is booked only once the provider's
own books (PayNow's poll URL, EcoCash's status lookup) say it arrived."""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import pytest
from payments.adapters.providers.base import CheckoutRequest
from payments.service_layer.checkout import payment_id_for
from sandbox.paynow_hash import with_hash
from sqlalchemy import text

from ..conftest import PaymentsHarness, checkout, eventually, first_installment, inbox, payment_status

pytestmark = pytest.mark.integration
PAYNOW_KEY = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977"  # the sandbox's and the service's development key
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PHONE = "+263771234567"


async def _checkout(payments: PaymentsHarness, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    return await checkout(payments, admin, await first_installment(payments, admin), **body)


async def _paynow_tx(payments: PaymentsHarness, payment_id: str) -> dict[str, Any]:
    [tx] = await payments.sandbox_call("GET", "/_sandbox/paynow/transactions", params={"reference": payment_id})
    return dict(tx)


async def _inbox_row(
    payments: PaymentsHarness, webhook_id: int, reached: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The inbox row (status, attempts, reason) once `reached` holds for it."""

    async def probe() -> dict[str, Any] | None:
        async with payments.runtime.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT status, attempts, reason FROM webhook_inbox WHERE id = :id"), {"id": webhook_id}
                )
            ).one()
        found = dict(row._mapping)
        return found if reached(found) else None

    return await eventually(probe)


async def _settled_row(payments: PaymentsHarness, webhook_id: int) -> dict[str, Any]:
    """The inbox row once the worker is done with it."""
    return await _inbox_row(payments, webhook_id, lambda row: row["status"] != "received")


def _status_update(tx: dict[str, Any], status: str, key: str = PAYNOW_KEY) -> dict[str, str]:
    """A PayNow status update as PayNow sends it: form fields in order, then the documented SHA-512 hash."""
    fields = {
        "reference": tx["reference"],
        "paynowreference": tx["paynowreference"],
        "amount": tx["amount"],
        "status": status,
        "pollurl": tx["pollurl"],
    }
    return with_hash(fields, key)


async def test_paynow_paid_is_booked_only_after_the_poll_url_confirms_it(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _checkout(payments, admin, provider="paynow")
    assert started["status"] == "pending"
    assert started["redirect_url"]
    tx = await _paynow_tx(payments, started["payment_id"])

    # A correctly hashed "Paid" while PayNow's own books (the poll URL) still say otherwise: not booked.
    early = await payments.client.post(
        "/api/v1/payments/webhooks/paynow", content=urlencode(_status_update(tx, "Paid")), headers=FORM
    )
    assert early.status_code == 200, early.text
    row = await _settled_row(payments, early.json()["received"])
    assert row["status"] == "ignored"
    assert "not confirmed" in row["reason"]
    assert (await payments.client.get(f"/api/v1/payments/{started['payment_id']}", headers=admin)).json()[
        "status"
    ] == "pending"

    # The payer pays: PayNow posts the hashed update to our result URL and the poll now agrees.
    await payments.sandbox_call("POST", f"/_sandbox/paynow/{tx['guid']}/status", json={"status": "Paid"})
    payment = await payment_status(payments, admin, started["payment_id"], "succeeded")
    assert payment["amount"] == started["amount"]
    [event] = await payments.spy.wait_for("payments.payment_succeeded")
    assert event["data"]["payment_id"] == started["payment_id"]


async def test_paynow_tampered_hash_is_refused_kept_and_never_applied(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _checkout(payments, admin, provider="paynow", method="ecocash", phone=PHONE)
    tx = await _paynow_tx(payments, started["payment_id"])
    await payments.sandbox_call(
        "POST", f"/_sandbox/paynow/{tx['guid']}/status", json={"status": "Paid", "deliver": False}
    )

    good = _status_update(tx, "Paid")
    cases = {
        "amount changed after hashing": {**good, "amount": "1.00"},
        "status changed after hashing": {**good, "status": "Delivered"},
        "hashed with another key": _status_update(tx, "Paid", key="not-the-integration-key"),
        "no hash": {k: v for k, v in good.items() if k != "hash"},
    }
    for name, fields in cases.items():
        response = await payments.client.post(
            "/api/v1/payments/webhooks/paynow", content=urlencode(fields), headers=FORM
        )
        assert response.status_code == 400, name
        assert response.headers["content-type"] == "application/problem+json"
    rejected = await inbox(payments, admin, status="rejected")
    assert len(rejected) == len(cases)
    assert all("PayNow" in r["reason"] for r in rejected)
    payment = (await payments.client.get(f"/api/v1/payments/{started['payment_id']}", headers=admin)).json()
    assert payment["status"] == "processing"  # a mobile push was started; nothing booked
    assert payments.spy.of("payments.payment_succeeded") == []


async def test_paynow_unknown_status_keeps_the_payment_pending(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _checkout(payments, admin, provider="paynow")
    tx = await _paynow_tx(payments, started["payment_id"])

    disputed = await payments.sandbox_call("POST", f"/_sandbox/paynow/{tx['guid']}/status", json={"status": "Disputed"})
    frozen = await payments.client.post(
        "/api/v1/payments/webhooks/paynow", content=urlencode(_status_update(tx, "Frozen")), headers=FORM
    )
    assert frozen.status_code == 200
    assert (await _settled_row(payments, frozen.json()["received"]))["status"] == "ignored"

    async def disputed_row() -> list[dict[str, Any]] | None:
        rows = [r for r in await inbox(payments, admin, status="ignored") if r["event_key"].endswith(":Disputed")]
        return rows or None

    [row] = await eventually(disputed_row)
    assert "unknown" in row["reason"]
    callback = await payments.sandbox_call("GET", f"/_sandbox/callbacks/{disputed['callback_id']}")
    assert [a["status_code"] for a in callback["attempts"]] == [200]
    payment = (await payments.client.get(f"/api/v1/payments/{started['payment_id']}", headers=admin)).json()
    assert payment["status"] == "pending"


async def test_ecocash_callback_is_a_hint_booked_after_the_status_lookup(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _checkout(payments, admin, provider="ecocash", phone=PHONE)
    assert started["status"] in ("pending", "processing")
    assert started["instructions"]

    # The payer approves on the handset; EcoCash posts its unsigned callback, twice.
    await payments.sandbox_call("POST", f"/_sandbox/ecocash/{started['payment_id']}/complete", json={"duplicates": 1})
    payment = await payment_status(payments, admin, started["payment_id"], "succeeded")
    assert payment["amount"] == started["amount"]
    await payments.spy.wait_for("payments.payment_succeeded")
    assert [e["data"]["payment_id"] for e in payments.spy.of("payments.payment_succeeded")] == [started["payment_id"]]


async def test_ecocash_lying_callback_is_not_booked(payments: PaymentsHarness, admin: dict[str, str]) -> None:
    started = await _checkout(payments, admin, provider="ecocash", phone=PHONE)
    [tx] = [
        t
        for t in await payments.sandbox_call("GET", "/_sandbox/ecocash/transactions")
        if t["clientCorrelator"] == started["payment_id"]
    ]
    assert tx["transactionOperationStatus"] != "COMPLETED"

    # Anyone can post an unsigned callback: this one claims the money arrived while EcoCash says it has not.
    lie = {**tx, "transactionOperationStatus": "COMPLETED"}
    response = await payments.client.post(
        "/api/v1/payments/webhooks/ecocash", content=json.dumps(lie), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    row = await _settled_row(payments, response.json()["received"])
    assert row["status"] == "ignored"
    assert "not confirmed" in row["reason"]
    payment = (await payments.client.get(f"/api/v1/payments/{started['payment_id']}", headers=admin)).json()
    assert payment["status"] != "succeeded"
    async with payments.runtime.db.engine.connect() as conn:
        paid = (
            await conn.execute(
                text("SELECT paid_minor FROM installments WHERE id = :id"), {"id": started["installment"]["id"]}
            )
        ).scalar_one()
    assert paid == 0
    await payments.spy.drain()
    assert payments.spy.of("payments.payment_succeeded") == []


async def test_a_webhook_whose_lookup_fails_is_retried_then_applied(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    started = await _checkout(payments, admin, provider="paynow")
    tx = await _paynow_tx(payments, started["payment_id"])
    await payments.sandbox_call(
        "POST", f"/_sandbox/paynow/{tx['guid']}/status", json={"status": "Paid", "deliver": False}
    )
    await payments.sandbox_call("POST", "/_sandbox/faults/paynow", json={"fail_rate": 1.0, "status": 503})
    paid = await payments.client.post(
        "/api/v1/payments/webhooks/paynow", content=urlencode(_status_update(tx, "Paid")), headers=FORM
    )
    assert paid.status_code == 200, paid.text

    # The poll URL is down: the attempt is counted, the row waits.
    row = await _inbox_row(payments, paid.json()["received"], lambda row: row["attempts"] >= 1)
    assert row["status"] == "received"
    assert "PayNow poll failed" in row["reason"], row
    await payments.sandbox_call("DELETE", "/_sandbox/faults/paynow")
    await payment_status(payments, admin, started["payment_id"], "succeeded")


async def test_a_retried_checkout_the_provider_had_completed_is_credited_once(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    installment = await first_installment(payments, admin)
    payment_id = payment_id_for(UUID(installment["id"]), "retry-me")
    # The first try reached EcoCash and the payer approved, but the request died before our row committed.
    await payments.app.providers.ecocash.start_checkout(
        CheckoutRequest(
            payment_id=payment_id,
            order_id=UUID(installment["order_id"]),
            installment_id=UUID(installment["id"]),
            amount_minor=installment["amount"]["amount_minor"],
            currency=installment["amount"]["currency"],
            method="ecocash",
            description="first try",
            idempotency_key=str(payment_id),
            phone=PHONE,
        )
    )
    await payments.sandbox_call("POST", f"/_sandbox/ecocash/{payment_id}/complete", json={"deliver": False})

    retried = await checkout(payments, admin, installment, idempotency_key="retry-me", provider="ecocash", phone=PHONE)

    assert (retried["payment_id"], retried["status"]) == (str(payment_id), "succeeded")
    [event] = await payments.spy.wait_for("payments.payment_succeeded")
    assert event["data"]["payment_id"] == str(payment_id)
    plan = (await payments.client.get(f"/api/v1/payments/orders/{installment['order_id']}/plan", headers=admin)).json()
    assert plan["installments"][0]["status"] == "paid"


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "paynow", "method": "card"},
        {"provider": "ecocash", "method": "web", "phone": PHONE},
        {"provider": "stripe", "method": "ecocash"},
        {"provider": "paynow", "method": "ecocash"},  # mobile money without the payer's phone
    ],
)
async def test_a_method_the_provider_does_not_offer_is_a_422_and_starts_nothing(
    payments: PaymentsHarness, admin: dict[str, str], body: dict[str, str]
) -> None:
    installment = await first_installment(payments, admin)
    response = await payments.client.post(
        f"/api/v1/payments/installments/{installment['id']}/checkout", json=body, headers=admin
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    async with payments.runtime.db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM payments"))).scalar_one() == 0
