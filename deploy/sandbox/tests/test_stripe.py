import json

import httpx
import pytest
import stripe
from sandbox import RunningSandbox

from .conftest import received


@pytest.fixture
def stripe_client(sandbox: RunningSandbox, client: httpx.Client) -> stripe.StripeClient:
    return stripe.StripeClient(
        sandbox.settings.stripe_api_key, base_addresses={"api": sandbox.base_url}, max_network_retries=0
    )


def test_sdk_creates_and_retrieves_a_payment_intent(stripe_client: stripe.StripeClient) -> None:
    created = stripe_client.v1.payment_intents.create(
        params={"amount": 12_500, "currency": "usd", "metadata": {"order_id": "ord-1"}}
    )
    fetched = stripe_client.v1.payment_intents.retrieve(created.id)

    assert created.id.startswith("pi_")
    assert created.status == "requires_payment_method"
    assert created.client_secret.startswith(f"{created.id}_secret_")
    assert fetched.id == created.id
    assert fetched.amount == 12_500
    assert fetched.currency == "usd"
    assert fetched.metadata["order_id"] == "ord-1"


def test_idempotency_key_returns_the_same_payment_intent(stripe_client: stripe.StripeClient) -> None:
    params: stripe.PaymentIntentCreateParams = {"amount": 500, "currency": "usd"}
    first = stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "order-7-try"})
    again = stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "order-7-try"})
    other = stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "order-8-try"})

    assert again.id == first.id
    assert other.id != first.id
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.payment_intents.create(
            params={"amount": 501, "currency": "usd"}, options={"idempotency_key": "order-7-try"}
        )


def test_sdk_errors_are_stripe_shaped(sandbox: RunningSandbox, stripe_client: stripe.StripeClient) -> None:
    wrong_key = stripe.StripeClient("sk_test_wrong", base_addresses={"api": sandbox.base_url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        wrong_key.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.payment_intents.retrieve("pi_does_not_exist")
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_succeeded_payment_sends_a_webhook_the_sdk_verifies(
    sandbox: RunningSandbox, client: httpx.Client, stripe_client: stripe.StripeClient
) -> None:
    client.put("/_sandbox/callback-urls/stripe", json={"url": f"{sandbox.base_url}/receiver/stripe"})
    pi = stripe_client.v1.payment_intents.create(params={"amount": 9_900, "currency": "usd"})

    answer = client.post(f"/_sandbox/stripe/payment_intents/{pi.id}/succeed", json={})
    assert answer.status_code == 200
    [delivery] = received(client, "stripe", 1)
    event = stripe.Webhook.construct_event(
        delivery["body"], delivery["headers"]["stripe-signature"], sandbox.settings.stripe_webhook_secret
    )

    assert event.type == "payment_intent.succeeded"
    assert event.data.object["id"] == pi.id
    assert event.data.object["status"] == "succeeded"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).latest_charge.startswith("ch_")


def test_bad_signature_option_is_refused_by_the_sdk(
    sandbox: RunningSandbox, client: httpx.Client, stripe_client: stripe.StripeClient
) -> None:
    pi = stripe_client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
    client.post(
        f"/_sandbox/stripe/payment_intents/{pi.id}/fail",
        json={"url": f"{sandbox.base_url}/receiver/stripe-bad", "bad_signature": True},
    )
    [delivery] = received(client, "stripe-bad", 1)

    assert json.loads(delivery["body"])["type"] == "payment_intent.payment_failed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            delivery["body"], delivery["headers"]["stripe-signature"], sandbox.settings.stripe_webhook_secret
        )


def test_refund_is_idempotent_and_sends_charge_refunded(
    sandbox: RunningSandbox, client: httpx.Client, stripe_client: stripe.StripeClient
) -> None:
    client.put("/_sandbox/callback-urls/stripe", json={"url": f"{sandbox.base_url}/receiver/refunds"})
    pi = stripe_client.v1.payment_intents.create(params={"amount": 2_000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    client.post(f"/_sandbox/stripe/payment_intents/{pi.id}/succeed", json={"deliver": False})

    refund = stripe_client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 500}, options={"idempotency_key": "refund-1"}
    )
    again = stripe_client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 500}, options={"idempotency_key": "refund-1"}
    )
    assert again.id == refund.id
    assert stripe_client.v1.refunds.retrieve(refund.id).amount == 500
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1_501})

    [delivery] = received(client, "refunds", 1)
    event = stripe.Webhook.construct_event(
        delivery["body"], delivery["headers"]["stripe-signature"], sandbox.settings.stripe_webhook_secret
    )
    assert event.type == "charge.refunded"
    assert event.data.object["amount_refunded"] == 500


def test_confirm_with_a_declining_test_card_fails(stripe_client: stripe.StripeClient) -> None:
    pi = stripe_client.v1.payment_intents.create(params={"amount": 700, "currency": "usd"})
    with pytest.raises(stripe.CardError) as declined:
        stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert declined.value.code == "card_declined"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"
