"""Refunds through Stripe in the sandbox: partial, idempotent, never above what was paid."""

from typing import Any
from uuid import uuid4

import pytest
from payments.adapters.providers.base import ProviderEvent
from payments.service_layer.ledger import PaymentNotVisible, book_event

from ..conftest import PaymentsHarness, first_installment, payment_status

pytestmark = pytest.mark.integration


async def _paid(payments: PaymentsHarness, admin: dict[str, str]) -> dict[str, Any]:
    installment = await first_installment(payments, admin)
    started = (
        await payments.client.post(
            f"/api/v1/payments/installments/{installment['id']}/checkout", json={"provider": "stripe"}, headers=admin
        )
    ).json()
    await payments.sandbox_call(
        "POST", f"/_sandbox/stripe/payment_intents/{started['provider_reference']}/succeed", json={}
    )
    return await payment_status(payments, admin, started["payment_id"], "succeeded")


async def _refund(payments: PaymentsHarness, admin: dict[str, str], payment_id: str, key: str, **body: Any) -> Any:
    return await payments.client.post(
        f"/api/v1/payments/{payment_id}/refunds", json=body, headers={**admin, "Idempotency-Key": key}
    )


async def test_partial_then_full_refund_idempotent_and_bounded(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    payment = await _paid(payments, admin)
    paid = payment["amount"]["amount_minor"]

    too_much = await _refund(payments, admin, payment["id"], "r0", amount_minor=paid + 1)
    assert too_much.status_code == 422
    assert too_much.headers["content-type"] == "application/problem+json"

    first = await _refund(payments, admin, payment["id"], "r1", amount_minor=1_000)
    assert first.status_code == 201, first.text
    again = await _refund(payments, admin, payment["id"], "r1", amount_minor=1_000)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    await payment_status(payments, admin, payment["id"], "partially_refunded")

    rest = await _refund(payments, admin, payment["id"], "r2")
    assert rest.status_code == 201
    assert rest.json()["amount"]["amount_minor"] == paid - 1_000
    after = await payment_status(payments, admin, payment["id"], "refunded")
    assert after["refunded"]["amount_minor"] == paid

    double = await _refund(payments, admin, payment["id"], "r3", amount_minor=1)
    assert double.status_code == 409
    refunds = await payments.sandbox_call("GET", "/_sandbox/stripe/events", params={"type": "charge.refunded"})
    assert len(refunds) == 2
    events = await payments.spy.wait_for("payments.payment_refunded", 2)
    assert sorted(e["data"]["amount"]["amount_minor"] for e in events) == sorted([1_000, paid - 1_000])


async def test_failed_payment_and_non_admin_cannot_refund(
    payments: PaymentsHarness, admin: dict[str, str], token: Any
) -> None:
    installment = await first_installment(payments, admin)
    started = (
        await payments.client.post(
            f"/api/v1/payments/installments/{installment['id']}/checkout", json={"provider": "stripe"}, headers=admin
        )
    ).json()
    await payments.sandbox_call(
        "POST", f"/_sandbox/stripe/payment_intents/{started['provider_reference']}/fail", json={}
    )
    await payment_status(payments, admin, started["payment_id"], "failed")
    refused = await _refund(payments, admin, started["payment_id"], "f1")
    assert refused.status_code == 409
    school = {"Authorization": f"Bearer {token(school_id=installment['school_id'])}", "Idempotency-Key": "s1"}
    forbidden = await payments.client.post(f"/api/v1/payments/{started['payment_id']}/refunds", json={}, headers=school)
    assert forbidden.status_code == 403
    del school["Idempotency-Key"]
    forbidden_without_key = await payments.client.post(
        f"/api/v1/payments/{started['payment_id']}/refunds", json={}, headers=school
    )
    assert forbidden_without_key.status_code == 403
    missing_key = await payments.client.post(
        f"/api/v1/payments/{started['payment_id']}/refunds", json={}, headers=admin
    )
    assert missing_key.status_code == 400


async def test_an_ecocash_refund_notice_ahead_of_its_refund_is_tried_again_not_quarantined(
    payments: PaymentsHarness,
) -> None:
    notice = ProviderEvent(
        provider="ecocash",
        event_key="refund-early:COMPLETED",
        kind="refund",
        raw_status="COMPLETED",
        refund_id=uuid4(),  # our refund's id, in a request that has not committed yet
        needs_confirmation=True,
    )
    async with payments.runtime.db.transaction() as session:
        with pytest.raises(PaymentNotVisible, match="not \\(yet\\) in our books"):
            await book_event(session, payments.app.providers, notice)
