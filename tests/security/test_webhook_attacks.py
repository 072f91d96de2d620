"""Provider webhooks under attack, over real HTTP into the running payments service: forged and
replayed signatures, stale timestamps, mismatched amounts and unknown references never book money;
the genuine webhook delivered many times books it exactly once."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sandbox.signing import stripe_signature_header

from tests.faults.harness import eventually, query, say

from .conftest import Secured, _seed

pytestmark = pytest.mark.e2e
SECRET = "whsec_sandbox_dev_secret"  # the sandbox's and payments' development default


def _payment(state: Secured, payment_id: str) -> dict[str, Any]:
    r = httpx.get(
        f"{state.system.url('payments')}/api/v1/payments/{payment_id}",
        headers={"Authorization": f"Bearer {state.admin_token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _inbox(state: Secured, status: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{state.system.url('payments')}/api/v1/payments/webhooks/inbox",
        params={"status": status, "limit": 1000},
        headers={"Authorization": f"Bearer {state.admin_token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return list(r.json())


def _event(payment: dict[str, Any], event_id: str, **obj: Any) -> bytes:
    amount = payment["amount"]["amount_minor"]
    body = {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": payment["provider_reference"],
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": payment["amount"]["currency"].lower(),
                "status": "succeeded",
                "metadata": {"payment_id": payment["id"], "order_id": payment["order_id"]},
                **obj,
            }
        },
    }
    return json.dumps(body).encode()


def _post(state: Secured, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return httpx.post(
        f"{state.system.url('payments')}/api/v1/payments/webhooks/stripe", content=body, headers=headers, timeout=10
    )


def _signed_at(state: Secured, body: bytes, timestamp: int) -> httpx.Response:
    return _post(state, body, stripe_signature_header(body, SECRET, timestamp))


def test_webhook_attacks_book_nothing_and_the_genuine_one_books_once(secured: Secured) -> None:
    tenant = _seed(secured.system, secured.admin_token)
    payment = _payment(secured, tenant.ids["payment_id"])
    reference = payment["provider_reference"]
    now = int(time.time())

    refused = {
        "forged signature": _post(secured, _event(payment, "evt_forged"), stripe_signature_header(b"x", "whsec_x")),
        "no signature": _post(secured, _event(payment, "evt_unsigned"), None),
        "stale timestamp": _signed_at(secured, _event(payment, "evt_stale"), now - 3600),
        "future timestamp": _signed_at(secured, _event(payment, "evt_future"), now + 3600),
    }
    for name, response in refused.items():
        assert response.status_code == 400, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), name

    # correctly signed, but lying about the money or naming a payment we never started
    quarantined = {
        "mismatched amount": _event(payment, "evt_amount", amount=1, amount_received=1),
        "mismatched currency": _event(payment, "evt_currency", currency="eur"),
        "unknown reference": _event(payment, "evt_unknown", id="pi_does_not_exist", metadata={}),
    }
    for name, body in quarantined.items():
        response = _post(secured, body, stripe_signature_header(body, SECRET))
        assert response.status_code == 200, (name, response.text)
    eventually(lambda: len(_inbox(secured, "quarantined")) >= len(quarantined))

    # the sandbox signs with the wrong secret: refused, and the payment is still not booked
    httpx.post(
        f"{secured.system.sandbox_url}/_sandbox/stripe/payment_intents/{reference}/succeed",
        json={"bad_signature": True},
        timeout=10,
    ).raise_for_status()
    eventually(lambda: any(r.get("provider") == "stripe" for r in _inbox(secured, "rejected")))
    assert _payment(secured, payment["id"])["status"] == "pending"

    # now the genuine webhook: replayed five more times by the provider
    callbacks = httpx.get(
        f"{secured.system.sandbox_url}/_sandbox/callbacks", params={"provider": "stripe"}, timeout=10
    ).json()
    mine = [c for c in callbacks if reference in json.dumps(c)]
    assert mine, "the sandbox stored no callback for this payment intent"
    httpx.post(
        f"{secured.system.sandbox_url}/_sandbox/callbacks/{mine[-1]['id']}/replay", json={"duplicates": 5}, timeout=10
    ).raise_for_status()
    eventually(lambda: _payment(secured, payment["id"])["status"] == "succeeded")

    def deliveries() -> dict[str, int]:
        rows = query(
            secured.system,
            "payments",
            "SELECT status, count(*) AS n FROM webhook_inbox WHERE provider = 'stripe' "
            "AND convert_from(body, 'UTF8') LIKE '%' || $1 || '%' "
            "AND status <> 'received' GROUP BY status",
            reference,
        )
        return {r["status"]: r["n"] for r in rows}

    def answered() -> list[int] | None:
        callback = httpx.get(f"{secured.system.sandbox_url}/_sandbox/callbacks/{mine[-1]['id']}", timeout=10).json()
        codes = [a["status_code"] for a in callback["attempts"]]
        return codes if len(codes) >= 7 else None

    # the bad-signature delivery was refused, all six genuine ones answered 2xx ...
    assert eventually(answered) == [400] + [200] * 6
    # ... and stored once: the repeats are refused by the intake's dedupe key. With the signed lies above
    # (which name the same reference) and the refused ones, every delivery that was stored is processed.
    outcome = eventually(lambda: (d := deliveries()) and sum(d.values()) >= 1 + 2 + len(refused) + 1 and d)
    assert outcome.get("applied") == 1, outcome

    booked = query(
        secured.system,
        "payments",
        "SELECT count(*) AS n FROM payments WHERE provider_reference = $1 AND status = 'succeeded'",
        reference,
    )[0]["n"]
    paid = query(
        secured.system, "payments", "SELECT paid_minor FROM installments WHERE id = $1::uuid", payment["installment_id"]
    )
    say(
        f"webhook attacks: {len(refused)} refused with 400, {len(quarantined)} quarantined, 1 bad sandbox signature "
        f"rejected, genuine webhook delivered 6 times -> booked {booked} time(s), installment paid {paid[0][0]}; "
        f"inbox outcomes for this payment intent: {outcome}"
    )
    assert booked == 1
    assert paid[0][0] == payment["amount"]["amount_minor"]
