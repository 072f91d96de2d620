"""EcoCash direct API: C2B charge pushed to the payer's phone, status lookup, refund.

Its notify callback is not signed, so it is only a hint: a lookup decides what is booked.
"""

import json
from typing import Any
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
from payments.domain.states import PaymentStatus

STATUSES: dict[str, PaymentStatus] = {
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "PENDING SUBSCRIBER VALIDATION": "processing",
}


class EcocashProvider:
    name: ProviderName = "ecocash"

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_base: str,
        username: str,
        password: str,
        merchant_code: str,
        notify_url: str,
        retries: int,
    ) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.auth = httpx.BasicAuth(username, password)
        self.merchant_code = merchant_code
        self.notify_url = notify_url
        self.retries = retries

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async def call() -> httpx.Response:
            response = await self.http.request(method, f"{self.api_base}{path}", json=body, auth=self.auth)
            if response.status_code >= 500:
                response.raise_for_status()
            return response

        try:
            # Charges and refunds are keyed by clientCorrelator, so a retry finds the first attempt.
            response = await with_retries(self.retries, call)
        except httpx.HTTPError as exc:
            raise ProviderError(f"EcoCash unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise ProviderError(f"EcoCash refused ({response.status_code}): {_error_text(response)}")
        data: dict[str, Any] = response.json()
        return data

    def _charge(self, correlator: str, phone: str, amount_minor: int, currency: str, text: str) -> dict[str, Any]:
        return {
            "clientCorrelator": correlator,
            "notifyUrl": self.notify_url,
            "referenceCode": correlator,
            "tranType": "MER",
            "endUserId": msisdn(phone),
            "remarks": text[:100],
            "transactionOperationStatus": "Charged",
            "paymentAmount": {
                "charginginformation": {
                    "amount": to_decimal(amount_minor),
                    "currency": currency,
                    "description": text[:100],
                },
                "chargeMetaData": {
                    "channel": "WEB",
                    "purchaseCategoryCode": "Online Payment",
                    "onBeHalfOf": "OneClass",
                },
            },
            "merchantCode": self.merchant_code,
            "currencyCode": currency,
            "countryCode": "ZW",
        }

    async def start_checkout(self, request: CheckoutRequest) -> CheckoutStarted:
        if not request.phone:
            raise ProviderError("EcoCash needs the payer's phone number", status=422)
        tx = await self._call(
            "POST",
            "/transactions/amount",
            self._charge(
                str(request.payment_id), request.phone, request.amount_minor, request.currency, request.description
            ),
        )
        return CheckoutStarted(
            provider_reference=str(tx.get("ecocashReference") or request.payment_id),
            status=STATUSES.get(str(tx.get("transactionOperationStatus")), "processing"),
            instructions="Approve the payment on your phone with your EcoCash PIN.",
        )

    async def lookup(self, payment: PaymentRef) -> ProviderStatus:
        if not payment.phone:
            return ProviderStatus(status=None, raw_status="no phone")
        return _status(await self._call("GET", f"/{msisdn(payment.phone)}/transactions/amount/{payment.payment_id}"))

    async def lookup_refund(self, phone: str, refund_id: UUID) -> ProviderStatus:
        return _status(await self._call("GET", f"/{msisdn(phone)}/transactions/amount/refund-{refund_id}"))

    async def refund(
        self, payment: PaymentRef, refund_id: UUID, amount_minor: int, idempotency_key: str
    ) -> RefundStarted:
        if not payment.phone or not payment.provider_reference:
            raise ProviderError("this EcoCash payment has no reference to refund", status=409)
        body = self._charge(f"refund-{refund_id}", payment.phone, amount_minor, payment.currency, "OneClass refund")
        body.update(tranType="REF", originalEcocashReference=payment.provider_reference)
        tx = await self._call("POST", "/transactions/refund", body)
        return RefundStarted(
            provider_reference=str(tx.get("ecocashReference", "")),
            succeeded=tx.get("transactionOperationStatus") == "COMPLETED",
        )

    def verify_webhook(self, body: bytes, headers: dict[str, str], received_at: float) -> ProviderEvent:
        try:
            tx = json.loads(body)
            correlator = str(tx["clientCorrelator"])
            raw = str(tx["transactionOperationStatus"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected(f"unreadable EcoCash notification: {exc}") from None
        refund = correlator.startswith("refund-")
        return ProviderEvent(
            provider="ecocash",
            event_key=f"{correlator}:{raw}",
            kind="refund" if refund else "payment",
            raw_status=raw,
            status=STATUSES.get(raw),
            payment_id=None if refund else _uuid(correlator),
            refund_id=_uuid(correlator.removeprefix("refund-")) if refund else None,
            provider_reference=tx.get("originalEcocashReference") if refund else tx.get("ecocashReference"),
            needs_confirmation=True,  # unsigned: a hint until a lookup says the same
        )

    def event_key_hint(self, body: bytes) -> str | None:
        try:
            tx = json.loads(body)
            return f"{tx['clientCorrelator']}:{tx['transactionOperationStatus']}"[:200]
        except (ValueError, KeyError, TypeError):
            return None


def _status(tx: dict[str, Any]) -> ProviderStatus:
    raw = str(tx.get("transactionOperationStatus", ""))
    charged = (tx.get("paymentAmount") or {}).get("charginginformation") or {}
    return ProviderStatus(
        status=STATUSES.get(raw),
        raw_status=raw,
        amount_minor=to_minor(charged["amount"]) if "amount" in charged else None,
        currency=charged.get("currency"),
    )


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    exception = (body.get("requestError") or {}).get("serviceException") or {}
    return str(exception.get("text") or body.get("detail") or body)[:200]


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
