"""Stripe through its official SDK: PaymentIntents, refunds, and webhook signatures."""

import json
from typing import Any
from uuid import UUID

import stripe

from payments.adapters.providers.base import (
    CheckoutRequest,
    CheckoutStarted,
    PaymentRef,
    ProviderError,
    ProviderEvent,
    ProviderName,
    ProviderStatus,
    RefundStarted,
    WebhookRejected,
)
from payments.domain.states import PaymentStatus

_PI_STATUS: dict[str, PaymentStatus] = {
    "requires_payment_method": "pending",
    "requires_confirmation": "pending",
    "requires_action": "pending",
    "processing": "processing",
    "requires_capture": "processing",
    "succeeded": "succeeded",
    "canceled": "cancelled",
}
_EVENTS: dict[str, PaymentStatus] = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.processing": "processing",
    "payment_intent.canceled": "cancelled",
}


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


class StripeProvider:
    name: ProviderName = "stripe"

    def __init__(self, api_base: str, api_key: str, webhook_secret: str, tolerance_s: int, retries: int) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=retries,
            http_client=stripe.HTTPXClient(),
        )
        self.webhook_secret = webhook_secret
        self.tolerance_s = tolerance_s

    async def start_checkout(self, request: CheckoutRequest) -> CheckoutStarted:
        params: dict[str, Any] = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "description": request.description,
            "metadata": {
                "payment_id": str(request.payment_id),
                "order_id": str(request.order_id),
                "installment_id": str(request.installment_id),
            },
        }
        if request.payment_method:
            params.update(payment_method=request.payment_method, confirm="true")
        try:
            pi = await self.client.v1.payment_intents.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"checkout-{request.idempotency_key}"},
            )
        except stripe.CardError as exc:
            declined: Any = (exc.error.payment_intent if exc.error else None) or {}
            reference = declined.get("id") if isinstance(declined, dict) else getattr(declined, "id", None)
            if not reference:
                raise ProviderError(f"Stripe declined the card: {exc.user_message}", status=402) from exc
            return CheckoutStarted(provider_reference=reference, status="failed", failure_reason=exc.user_message)
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe refused the payment: {exc.user_message or exc}") from exc
        status = _PI_STATUS.get(pi.status, "pending")
        # Money is booked from the webhook (or a lookup), never from this answer: a confirmed intent is processing.
        return CheckoutStarted(
            provider_reference=pi.id,
            status="processing" if status == "succeeded" else status,
            client_secret=pi.client_secret,
        )

    async def lookup(self, payment: PaymentRef) -> ProviderStatus:
        if not payment.provider_reference:
            return ProviderStatus(status=None, raw_status="unknown")
        try:
            pi = await self.client.v1.payment_intents.retrieve_async(payment.provider_reference)
            refunded = None
            if pi.latest_charge:
                charge_id = pi.latest_charge if isinstance(pi.latest_charge, str) else pi.latest_charge.id
                charge = await self.client.v1.charges.retrieve_async(charge_id)
                refunded = charge.amount_refunded
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe lookup failed: {exc.user_message or exc}") from exc
        status = _PI_STATUS.get(pi.status)
        error = pi.last_payment_error
        if pi.status == "requires_payment_method" and error is not None:
            status = "failed"
        return ProviderStatus(
            status=status,
            raw_status=pi.status,
            amount_minor=pi.amount_received if pi.status == "succeeded" else pi.amount,
            currency=pi.currency.upper(),
            refunded_minor=refunded,
            failure_reason=error.message if error is not None else None,
        )

    async def refund(
        self, payment: PaymentRef, refund_id: UUID, amount_minor: int, idempotency_key: str
    ) -> RefundStarted:
        try:
            refund = await self.client.v1.refunds.create_async(
                params={
                    "payment_intent": payment.provider_reference or "",
                    "amount": amount_minor,
                    "metadata": {"refund_id": str(refund_id), "payment_id": str(payment.payment_id)},
                },
                options={"idempotency_key": f"refund-{idempotency_key}"},
            )
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe refused the refund: {exc.user_message or exc}") from exc
        return RefundStarted(provider_reference=refund.id, succeeded=refund.status == "succeeded")

    def verify_webhook(self, body: bytes, headers: dict[str, str], received_at: float) -> ProviderEvent:
        header = headers.get("stripe-signature")
        if not header:
            raise WebhookRejected("missing Stripe-Signature header")
        try:
            # The replay window is measured from when we received it (not from now): a webhook stored
            # before a crash is still good when the worker gets to it after the restart.
            stripe.WebhookSignature.verify_header(body.decode("utf-8"), header, self.webhook_secret, tolerance=None)
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            raise WebhookRejected(f"Stripe signature refused: {exc}") from None
        timestamp = _timestamp(header)
        if timestamp < received_at - self.tolerance_s:
            raise WebhookRejected(f"Stripe signature timestamp is older than the {self.tolerance_s} s tolerance")
        if timestamp > received_at + self.tolerance_s:
            raise WebhookRejected(f"Stripe signature timestamp is more than {self.tolerance_s} s in the future")
        try:
            event = json.loads(body)
            obj = event["data"]["object"]
            event_id, event_type = str(event["id"]), str(event["type"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected(f"signed but unreadable Stripe event: {exc}") from None
        try:
            return _provider_event(event_id, event_type, obj)
        except (AttributeError, TypeError, ValueError) as exc:  # e.g. an object or its metadata that is not a map
            raise WebhookRejected(f"signed but unreadable Stripe event: {exc}") from None

    def event_key_hint(self, body: bytes) -> str | None:
        try:
            return str(json.loads(body)["id"])[:200]
        except (ValueError, KeyError, TypeError):
            return None


def _provider_event(event_id: str, event_type: str, obj: Any) -> ProviderEvent:
    """Our reading of a verified Stripe event's object."""
    metadata = obj.get("metadata") or {}
    common: dict[str, Any] = {
        "provider": "stripe",
        "event_key": event_id,
        "raw_status": event_type,
        "payment_id": _uuid(metadata.get("payment_id")),
        "order_id": _uuid(metadata.get("order_id")),
        "currency": str(obj.get("currency", "")).upper() or None,
    }
    if event_type in _EVENTS:
        error = obj.get("last_payment_error") or {}
        return ProviderEvent(
            **common,
            kind="payment",
            status=_EVENTS[event_type],
            provider_reference=obj.get("id"),
            amount_minor=obj.get("amount_received") if event_type.endswith("succeeded") else obj.get("amount"),
            failure_reason=error.get("message"),
        )
    if event_type == "charge.refunded":
        return ProviderEvent(
            **common,
            kind="refund",
            provider_reference=obj.get("payment_intent"),
            amount_minor=obj.get("amount"),
            refunded_minor=obj.get("amount_refunded"),
        )
    return ProviderEvent(**common, kind="ignored")


def _timestamp(header: str) -> int:
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    raise WebhookRejected("Stripe-Signature has no timestamp")
