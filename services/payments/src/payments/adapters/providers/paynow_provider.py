"""PayNow: web checkout and mobile express (EcoCash / OneMoney), form-encoded with a SHA-512 hash."""

from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

import httpx

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
    msisdn,
    to_decimal,
    to_minor,
)
from payments.adapters.providers.http import with_retries
from payments.adapters.providers.paynow_hash import hash_matches, paynow_hash
from payments.domain.states import PaymentStatus

# "Paid" and what follows it mean the money arrived; unknown statuses leave a payment where it is.
STATUSES: dict[str, PaymentStatus] = {
    "paid": "succeeded",
    "awaiting delivery": "succeeded",
    "delivered": "succeeded",
    "created": "pending",
    "sent": "processing",
    "cancelled": "cancelled",
    "failed": "failed",
    "refunded": "refunded",
}
MONEY_IN = frozenset({"paid", "awaiting delivery", "delivered"})
FORM = "application/x-www-form-urlencoded"


class PaynowProvider:
    name: ProviderName = "paynow"

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_base: str,
        integration_id: str,
        integration_key: str,
        result_url: str,
        return_url: str,
        auth_email: str,
        retries: int,
    ) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.integration_id = integration_id
        self.key = integration_key
        self.result_url = result_url
        self.return_url = return_url
        self.auth_email = auth_email
        self.retries = retries

    def _signed(self, fields: dict[str, str]) -> dict[str, str]:
        return {**fields, "hash": paynow_hash(fields, self.key)}

    def _read(self, response: httpx.Response) -> dict[str, str]:
        fields = dict(parse_qsl(response.text, keep_blank_values=True))
        if fields.get("status", "").lower() == "error":
            raise ProviderError(f"PayNow refused: {fields.get('error', 'unknown error')}")
        response.raise_for_status()
        if not hash_matches(fields, self.key):
            raise ProviderError("PayNow answer failed its hash check")
        return fields

    async def _post(self, path: str, fields: dict[str, str]) -> dict[str, str]:
        async def call() -> httpx.Response:
            return await self.http.post(
                f"{self.api_base}{path}", content=urlencode(self._signed(fields)), headers={"Content-Type": FORM}
            )

        try:
            # PayNow takes no idempotency key: only retry when the request never left.
            return self._read(await with_retries(self.retries, call, idempotent=False))
        except httpx.HTTPError as exc:
            raise ProviderError(f"PayNow unreachable: {exc}") from exc

    async def start_checkout(self, request: CheckoutRequest) -> CheckoutStarted:
        fields = {
            "id": self.integration_id,
            "reference": str(request.payment_id),
            "amount": to_decimal(request.amount_minor),
            "additionalinfo": request.description,
            "returnurl": self.return_url,
            "resulturl": self.result_url,
            "authemail": self.auth_email,
            "status": "Message",
        }
        if request.method in ("ecocash", "onemoney"):
            if not request.phone:
                raise ProviderError("mobile money needs the payer's phone number", status=422)
            fields.update(phone=_local(request.phone), method=request.method)
            answer = await self._post("/interface/remotetransaction", fields)
            return CheckoutStarted(
                provider_reference=answer.get("paynowreference") or str(request.payment_id),
                status="processing",
                instructions=answer.get("instructions"),
                poll_url=answer.get("pollurl"),
            )
        answer = await self._post("/interface/initiatetransaction", fields)
        return CheckoutStarted(
            provider_reference=str(request.payment_id),
            status="pending",
            redirect_url=answer.get("browserurl"),
            poll_url=answer.get("pollurl"),
        )

    async def lookup(self, payment: PaymentRef) -> ProviderStatus:
        if not payment.poll_url:
            return ProviderStatus(status=None, raw_status="no poll url")
        poll_url = payment.poll_url

        async def call() -> httpx.Response:
            response = await self.http.post(poll_url)
            if response.status_code >= 500:
                response.raise_for_status()
            return response

        try:
            fields = self._read(await with_retries(self.retries, call))
        except httpx.HTTPError as exc:
            raise ProviderError(f"PayNow poll failed: {exc}") from exc
        if fields.get("reference") != str(payment.payment_id):
            raise ProviderError("PayNow poll answered for another reference")
        raw = fields.get("status", "")
        return ProviderStatus(
            status=STATUSES.get(raw.lower()),
            raw_status=raw,
            amount_minor=to_minor(fields["amount"]) if fields.get("amount") else None,
            currency=payment.currency,  # PayNow answers carry no currency: the transaction was made in ours
        )

    async def refund(
        self, payment: PaymentRef, refund_id: UUID, amount_minor: int, idempotency_key: str
    ) -> RefundStarted:
        raise ProviderError("PayNow has no refund API: refund from the PayNow merchant dashboard", status=409)

    def verify_webhook(self, body: bytes, headers: dict[str, str], received_at: float) -> ProviderEvent:
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebhookRejected(f"unreadable PayNow status update: {exc}") from None
        if not fields.get("hash"):
            raise WebhookRejected("PayNow status update without a hash")
        if not hash_matches(fields, self.key):
            raise WebhookRejected("PayNow hash does not match")
        reference, raw = fields.get("reference", ""), fields.get("status", "")
        if not reference or not raw:
            raise WebhookRejected("PayNow status update without reference or status")
        try:
            amount: int | None = to_minor(fields["amount"]) if fields.get("amount") else None
        except (ValueError, ArithmeticError):
            raise WebhookRejected(f"PayNow amount {fields.get('amount')!r} is not money") from None
        status = STATUSES.get(raw.lower())
        fields_kept: dict[str, Any] = {"paynowreference": fields.get("paynowreference", "")}
        return ProviderEvent(
            provider="paynow",
            event_key=f"{reference}:{raw}",
            kind="refund" if status == "refunded" else "payment",
            raw_status=raw,
            status=None if status == "refunded" else status,
            payment_id=_uuid(reference),
            amount_minor=amount,
            refunded_minor=amount if status == "refunded" else None,
            needs_confirmation=raw.lower() in MONEY_IN,
            poll_url=fields.get("pollurl"),
            extra=fields_kept,
        )

    def event_key_hint(self, body: bytes) -> str | None:
        fields = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        return f"{fields.get('reference', '')}:{fields.get('status', '')}"[:200] if fields else None


def _local(phone: str) -> str:
    """PayNow wants the local form 07xxxxxxxx."""
    return "0" + msisdn(phone)[3:]


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
