"""Enough of Stripe's REST API for the official SDK: PaymentIntents, Charges, Refunds, Events, webhooks."""

import hashlib
import json
import secrets
import time
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from sandbox.callbacks import CallbackDispatcher, DeliveryOptions
from sandbox.deps import CallbackUrlsDep, DispatcherDep, SettingsDep, fault_gate
from sandbox.problems import ProblemError
from sandbox.settings import SandboxSettings
from sandbox.signing import stripe_signature_header, wrong_secret
from sandbox.stripe_form import parse_stripe_form

API_VERSION = stripe.api_version
# Stripe's test payment methods that always decline.
DECLINING_PAYMENT_METHODS = frozenset({"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"})
FINAL_STATUSES = frozenset({"succeeded", "canceled"})

router = APIRouter(prefix="/v1", tags=["stripe"], dependencies=[Depends(fault_gate("stripe"))])
control = APIRouter(prefix="/_sandbox/stripe", tags=["control: stripe"])

Obj = dict[str, Any]


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}"


class StripeError(ProblemError):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", **fields: Any) -> None:
        error = {"type": type_, "message": message, **fields}
        super().__init__(
            status,
            message,
            type_=f"urn:oneclass:sandbox:stripe:{type_}",
            extra={"error": error},
            headers={"Request-Id": _id("req")},
        )


class StripeStore:
    def __init__(self) -> None:
        self.payment_intents: dict[str, Obj] = {}
        self.charges: dict[str, Obj] = {}
        self.refunds: dict[str, Obj] = {}
        self.events: dict[str, Obj] = {}
        # (endpoint, Idempotency-Key) -> (fingerprint of the parameters, the response first given)
        self.idempotency: dict[tuple[str, str], tuple[str, Obj]] = {}

    def reset(self) -> None:
        for table in (self.payment_intents, self.charges, self.refunds, self.events, self.idempotency):
            table.clear()

    def payment_intent(self, pi_id: str) -> Obj:
        pi = self.payment_intents.get(pi_id)
        if pi is None:
            raise StripeError(404, f"No such payment_intent: '{pi_id}'", code="resource_missing", param="intent")
        return pi


def _store(request: Request) -> StripeStore:
    store: StripeStore = request.app.state.sandbox.stripe
    return store


StripeStoreDep = Annotated[StripeStore, Depends(_store)]


def _authenticate(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    if authorization != f"Bearer {settings.stripe_api_key}":
        raise StripeError(401, "Invalid API Key provided.", type_="invalid_request_error", code="api_key_invalid")


Authenticated = Depends(_authenticate)


def _respond(obj: Obj, *, replayed: bool = False) -> JSONResponse:
    headers = {"Request-Id": _id("req"), "Stripe-Version": API_VERSION}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(obj, headers=headers)


def _fingerprint(params: Obj) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def _replay(store: StripeStore, endpoint: str, key: str | None, params: Obj) -> Obj | None:
    if key is None:
        return None
    seen = store.idempotency.get((endpoint, key))
    if seen is None:
        return None
    fingerprint, response = seen
    if fingerprint != _fingerprint(params):
        raise StripeError(
            400,
            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            type_="idempotency_error",
        )
    return response


def _remember(store: StripeStore, endpoint: str, key: str | None, params: Obj, response: Obj) -> None:
    if key is not None:
        store.idempotency[(endpoint, key)] = (_fingerprint(params), json.loads(json.dumps(response)))


def _int_param(params: Obj, name: str, *, required: bool) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name) from None
    if value < 1 or value > 99_999_999:
        raise StripeError(400, "Amount must be between 1 and 99999999.", code="parameter_invalid_integer", param=name)
    return value


def _metadata(params: Obj) -> dict[str, str]:
    raw = params.get("metadata") or {}
    if not isinstance(raw, dict):
        raise StripeError(400, "Invalid metadata: must be a hash", code="parameter_invalid", param="metadata")
    # An empty value unsets a key in Stripe.
    return {str(k): str(v) for k, v in raw.items() if v != ""}


# --- events -------------------------------------------------------------------------------------------


def emit_event(
    store: StripeStore,
    dispatcher: CallbackDispatcher,
    settings: SandboxSettings,
    url: str,
    event_type: str,
    obj: Obj,
    options: DeliveryOptions,
) -> Obj:
    event: Obj = {
        "id": _id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": json.loads(json.dumps(obj))},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    store.events[event["id"]] = event

    def sign(body: bytes, bad: bool) -> dict[str, str]:
        secret = settings.stripe_webhook_secret
        return {"Stripe-Signature": stripe_signature_header(body, wrong_secret(secret) if bad else secret)}

    callback = dispatcher.record(
        provider="stripe",
        kind=event_type,
        subject=str(obj["id"]),
        url=url,
        body=json.dumps(event, indent=2).encode(),
        content_type="application/json; charset=utf-8",
        signer=sign,
    )
    event["sandbox_callback_id"] = callback.id
    dispatcher.dispatch(callback, options)
    return event


# --- state changes ------------------------------------------------------------------------------------


def _new_charge(pi: Obj) -> Obj:
    charge: Obj = {
        "id": _id("ch"),
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": pi["amount"],
        "amount_refunded": 0,
        "captured": True,
        "created": int(time.time()),
        "currency": pi["currency"],
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "paid": True,
        "payment_intent": pi["id"],
        "payment_method": pi.get("payment_method") or "pm_card_visa",
        "refunded": False,
        "status": "succeeded",
    }
    return charge


def succeed_payment_intent(store: StripeStore, pi: Obj) -> Obj:
    if pi["status"] in FINAL_STATUSES:
        raise ProblemError(409, f"payment intent {pi['id']} is already {pi['status']}")
    charge = _new_charge(pi)
    store.charges[charge["id"]] = charge
    pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"], last_payment_error=None)
    return pi


def fail_payment_intent(store: StripeStore, pi: Obj, decline_code: str = "generic_decline") -> Obj:
    if pi["status"] in FINAL_STATUSES:
        raise ProblemError(409, f"payment intent {pi['id']} is already {pi['status']}")
    charge = _new_charge(pi)
    charge.update(
        status="failed",
        paid=False,
        captured=False,
        amount_captured=0,
        failure_code="card_declined",
        failure_message="Your card was declined.",
    )
    store.charges[charge["id"]] = charge
    pi.update(
        status="requires_payment_method",
        latest_charge=charge["id"],
        last_payment_error={
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": "Your card was declined.",
            "charge": charge["id"],
        },
    )
    return pi


# --- REST API -----------------------------------------------------------------------------------------


@router.post("/payment_intents", dependencies=[Authenticated])
async def create_payment_intent(
    request: Request,
    store: StripeStoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    urls: CallbackUrlsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    params = parse_stripe_form(await request.body())
    if (replayed := _replay(store, "payment_intents", idempotency_key, params)) is not None:
        return _respond(replayed, replayed=True)
    amount = _int_param(params, "amount", required=True)
    currency = str(params.get("currency") or "").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise StripeError(400, "Missing required param: currency.", code="parameter_missing", param="currency")
    pi_id = _id("pi")
    pi: Obj = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": params.get("capture_method", "automatic_async"),
        "client_secret": f"{pi_id}_secret_{secrets.token_urlsafe(18)}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": currency,
        "customer": params.get("customer"),
        "description": params.get("description"),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": _metadata(params),
        "payment_method": params.get("payment_method"),
        "payment_method_types": list((params.get("payment_method_types") or {"0": "card"}).values()),
        "receipt_email": params.get("receipt_email"),
        "status": "requires_confirmation" if params.get("payment_method") else "requires_payment_method",
    }
    store.payment_intents[pi_id] = pi
    if params.get("confirm") == "true":
        _confirm(store, dispatcher, settings, urls.get("stripe"), pi, params.get("payment_method"))
    _remember(store, "payment_intents", idempotency_key, params, pi)
    return _respond(pi)


@router.get("/payment_intents/{pi_id}", dependencies=[Authenticated])
async def retrieve_payment_intent(pi_id: str, store: StripeStoreDep) -> JSONResponse:
    return _respond(store.payment_intent(pi_id))


def _confirm(
    store: StripeStore,
    dispatcher: CallbackDispatcher,
    settings: SandboxSettings,
    url: str,
    pi: Obj,
    payment_method: str | None,
) -> None:
    if pi["status"] in FINAL_STATUSES:
        raise StripeError(
            400, f"This PaymentIntent's status is {pi['status']}.", code="payment_intent_unexpected_state"
        )
    pm = payment_method or pi.get("payment_method")
    if pm is None:
        raise StripeError(400, "You must provide a payment method.", code="parameter_missing", param="payment_method")
    pi["payment_method"] = pm
    if pm in DECLINING_PAYMENT_METHODS:
        fail_payment_intent(store, pi)
        emit_event(store, dispatcher, settings, url, "payment_intent.payment_failed", pi, DeliveryOptions())
        raise StripeError(
            402,
            "Your card was declined.",
            type_="card_error",
            code="card_declined",
            decline_code="generic_decline",
            payment_intent=pi,
        )
    succeed_payment_intent(store, pi)
    emit_event(store, dispatcher, settings, url, "payment_intent.succeeded", pi, DeliveryOptions())


@router.post("/payment_intents/{pi_id}/confirm", dependencies=[Authenticated])
async def confirm_payment_intent(
    pi_id: str,
    request: Request,
    store: StripeStoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    urls: CallbackUrlsDep,
) -> JSONResponse:
    params = parse_stripe_form(await request.body())
    pi = store.payment_intent(pi_id)
    _confirm(store, dispatcher, settings, urls.get("stripe"), pi, params.get("payment_method"))
    return _respond(pi)


@router.post("/payment_intents/{pi_id}/cancel", dependencies=[Authenticated])
async def cancel_payment_intent(
    pi_id: str, store: StripeStoreDep, dispatcher: DispatcherDep, settings: SettingsDep, urls: CallbackUrlsDep
) -> JSONResponse:
    pi = store.payment_intent(pi_id)
    if pi["status"] in FINAL_STATUSES:
        raise StripeError(
            400, f"This PaymentIntent's status is {pi['status']}.", code="payment_intent_unexpected_state"
        )
    pi.update(status="canceled", canceled_at=int(time.time()), cancellation_reason="requested_by_customer")
    emit_event(store, dispatcher, settings, urls.get("stripe"), "payment_intent.canceled", pi, DeliveryOptions())
    return _respond(pi)


@router.get("/charges/{charge_id}", dependencies=[Authenticated])
async def retrieve_charge(charge_id: str, store: StripeStoreDep) -> JSONResponse:
    charge = store.charges.get(charge_id)
    if charge is None:
        raise StripeError(404, f"No such charge: '{charge_id}'", code="resource_missing", param="id")
    return _respond(charge)


@router.post("/refunds", dependencies=[Authenticated])
async def create_refund(
    request: Request,
    store: StripeStoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    urls: CallbackUrlsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    params = parse_stripe_form(await request.body())
    if (replayed := _replay(store, "refunds", idempotency_key, params)) is not None:
        return _respond(replayed, replayed=True)
    pi_id = params.get("payment_intent")
    if not pi_id and params.get("charge") in store.charges:
        pi_id = store.charges[params["charge"]]["payment_intent"]
    if not pi_id:
        raise StripeError(
            400,
            "One of the following params should be provided for this request: payment_intent or charge.",
            code="parameter_missing",
            param="payment_intent",
        )
    pi = store.payment_intent(str(pi_id))
    if pi["status"] != "succeeded":
        raise StripeError(
            400,
            f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
            code="charge_not_refundable",
        )
    charge = store.charges[pi["latest_charge"]]
    refundable = charge["amount"] - charge["amount_refunded"]
    amount = _int_param(params, "amount", required=False) or refundable
    if amount > refundable:
        raise StripeError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})",
            code="amount_too_large",
            param="amount",
        )
    refund: Obj = {
        "id": _id("re"),
        "object": "refund",
        "amount": amount,
        "charge": charge["id"],
        "created": int(time.time()),
        "currency": charge["currency"],
        "metadata": _metadata(params),
        "payment_intent": pi["id"],
        "reason": params.get("reason"),
        "status": "succeeded",
    }
    store.refunds[refund["id"]] = refund
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    emit_event(store, dispatcher, settings, urls.get("stripe"), "charge.refunded", charge, DeliveryOptions())
    _remember(store, "refunds", idempotency_key, params, refund)
    return _respond(refund)


@router.get("/refunds/{refund_id}", dependencies=[Authenticated])
async def retrieve_refund(refund_id: str, store: StripeStoreDep) -> JSONResponse:
    refund = store.refunds.get(refund_id)
    if refund is None:
        raise StripeError(404, f"No such refund: '{refund_id}'", code="resource_missing", param="id")
    return _respond(refund)


@router.get("/events/{event_id}", dependencies=[Authenticated])
async def retrieve_event(event_id: str, store: StripeStoreDep) -> JSONResponse:
    event = store.events.get(event_id)
    if event is None:
        raise StripeError(404, f"No such event: '{event_id}'", code="resource_missing", param="id")
    return _respond({k: v for k, v in event.items() if k != "sandbox_callback_id"})


# --- control ------------------------------------------------------------------------------------------


@control.get("/payment_intents")
async def list_payment_intents(store: StripeStoreDep) -> list[Obj]:
    return list(store.payment_intents.values())


@control.get("/events")
async def list_events(store: StripeStoreDep, type: str | None = None) -> list[Obj]:
    return [e for e in store.events.values() if type is None or e["type"] == type]


@control.post("/payment_intents/{pi_id}/succeed")
async def control_succeed(
    pi_id: str,
    store: StripeStoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    urls: CallbackUrlsDep,
    options: DeliveryOptions | None = None,
) -> Obj:
    pi = succeed_payment_intent(store, _control_lookup(store, pi_id))
    event = emit_event(
        store, dispatcher, settings, urls.get("stripe"), "payment_intent.succeeded", pi, options or DeliveryOptions()
    )
    return {"payment_intent": pi, "event": event}


@control.post("/payment_intents/{pi_id}/fail")
async def control_fail(
    pi_id: str,
    store: StripeStoreDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    urls: CallbackUrlsDep,
    options: DeliveryOptions | None = None,
) -> Obj:
    pi = fail_payment_intent(store, _control_lookup(store, pi_id))
    event = emit_event(
        store,
        dispatcher,
        settings,
        urls.get("stripe"),
        "payment_intent.payment_failed",
        pi,
        options or DeliveryOptions(),
    )
    return {"payment_intent": pi, "event": event}


def _control_lookup(store: StripeStore, pi_id: str) -> Obj:
    pi = store.payment_intents.get(pi_id)
    if pi is None:
        raise ProblemError(404, f"no payment intent {pi_id}")
    return pi
