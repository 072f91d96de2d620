"""SMS gateways: TelOne, Econet and a generic HTTP gateway, each with its own request shape and API key.

Every gateway is idempotent on the client's key (an `Idempotency-Key` header, else the body's own
client reference): a repeated key answers with the original message and stores nothing new, so a
sender retrying after a lost answer never delivers the same SMS twice.
"""

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from sandbox.callbacks import CallbackDispatcher, DeliveryOptions
from sandbox.deps import CallbackUrlsDep, DispatcherDep, SettingsDep, fault_gate
from sandbox.problems import ProblemError
from sandbox.sms_segments import count_segments

MSISDN = r"^\+?[1-9]\d{6,14}$"
SmsOutcome = Literal["DELIVERED", "FAILED"]


@dataclass
class SmsMessage:
    id: str
    provider: str
    to: str
    text: str
    sender: str | None
    segments: int
    callback_url: str
    status: str
    received_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "to": self.to,
            "text": self.text,
            "sender": self.sender,
            "segments": self.segments,
            "callback_url": self.callback_url,
            "status": self.status,
            "received_at": self.received_at.isoformat(),
        }


ReportBuilder = Callable[[SmsMessage, SmsOutcome], dict[str, Any]]


class SmsBehaviour(BaseModel):
    delivery_reports: bool = True
    report_delay_ms: int = Field(default=0, ge=0, le=600_000)
    outcome: SmsOutcome = "DELIVERED"
    failing_numbers: list[str] = Field(default_factory=list, description="these recipients get FAILED")


class SmsStore:
    def __init__(self, default_behaviour: SmsBehaviour) -> None:
        self._default_behaviour = default_behaviour
        self.behaviour = default_behaviour.model_copy(deep=True)
        self.messages: list[SmsMessage] = []
        self.by_key: dict[tuple[str, str], SmsMessage] = {}

    def reset(self) -> None:
        self.behaviour = self._default_behaviour.model_copy(deep=True)
        self.messages.clear()
        self.by_key.clear()

    def find(self, *, to: str | None = None, provider: str | None = None) -> list[SmsMessage]:
        return [m for m in self.messages if (to is None or m.to == to) and (provider is None or m.provider == provider)]


def _store(request: Request) -> SmsStore:
    store: SmsStore = request.app.state.sandbox.sms
    return store


SmsStoreDep = Annotated[SmsStore, Depends(_store)]


def _accept(
    store: SmsStore,
    dispatcher: CallbackDispatcher,
    *,
    provider: str,
    idempotency_key: str | None,
    message_id: str,
    to: str,
    text: str,
    sender: str | None,
    callback_url: str,
    report: ReportBuilder,
) -> SmsMessage:
    if idempotency_key:
        original = store.by_key.get((provider, idempotency_key))
        if original is not None:
            if (original.to, original.text) != (to, text):
                raise ProblemError(
                    422,
                    "idempotency key reused with a different message",
                    extra={"error": "idempotency_key_reused"},
                )
            return original
    behaviour = store.behaviour
    outcome: SmsOutcome = "FAILED" if to in behaviour.failing_numbers else behaviour.outcome
    message = SmsMessage(
        id=message_id,
        provider=provider,
        to=to,
        text=text,
        sender=sender,
        segments=count_segments(text),
        callback_url=callback_url,
        status=outcome,
        received_at=datetime.now(UTC),
    )
    store.messages.append(message)
    if idempotency_key:
        store.by_key[(provider, idempotency_key)] = message
    callback = dispatcher.record(
        provider=provider,
        kind=f"delivery_report.{outcome.lower()}",
        subject=message_id,
        url=callback_url,
        body=json.dumps(report(message, outcome)).encode(),
        content_type="application/json",
    )
    dispatcher.dispatch(
        callback,
        DeliveryOptions(delay_ms=behaviour.report_delay_ms, deliver=behaviour.delivery_reports),
    )
    return message


def _unauthorized(provider: str) -> ProblemError:
    return ProblemError(401, f"missing or wrong {provider} API key", extra={"error": "unauthorized"})


# --- TelOne -------------------------------------------------------------------------------------------

telone = APIRouter(prefix="/telone/v1", tags=["sms: telone"], dependencies=[Depends(fault_gate("telone"))])


class TeloneSms(BaseModel):
    to: str = Field(pattern=MSISDN)
    message: str = Field(min_length=1, max_length=1600)
    sender_id: str | None = Field(default=None, max_length=11)
    callback_url: str | None = None
    reference: str | None = None


def _telone_report(message: SmsMessage, outcome: SmsOutcome) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "to": message.to,
        "status": outcome,
        "error_code": None if outcome == "DELIVERED" else "EC_UNDELIVERABLE",
        "reported_at": datetime.now(UTC).isoformat(),
    }


@telone.post("/sms", status_code=202)
async def telone_send(
    body: TeloneSms,
    store: SmsStoreDep,
    dispatcher: DispatcherDep,
    urls: CallbackUrlsDep,
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    if x_api_key != settings.telone_api_key:
        raise _unauthorized("TelOne")
    message = _accept(
        store,
        dispatcher,
        provider="telone",
        idempotency_key=idempotency_key or body.reference,
        message_id=f"TLN{secrets.token_hex(10).upper()}",
        to=body.to,
        text=body.message,
        sender=body.sender_id,
        callback_url=body.callback_url or urls.get("telone"),
        report=_telone_report,
    )
    return {
        "status": "ACCEPTED",
        "message_id": message.id,
        "to": message.to,
        "segments": message.segments,
        "reference": body.reference,
    }


# --- Econet -------------------------------------------------------------------------------------------

econet = APIRouter(prefix="/econet/v1", tags=["sms: econet"], dependencies=[Depends(fault_gate("econet"))])


class EconetMessage(BaseModel):
    destination: str = Field(pattern=MSISDN)
    text: str = Field(min_length=1, max_length=1600)
    source: str | None = Field(default=None, max_length=11)
    dlr_url: str | None = Field(default=None, alias="dlrUrl")
    client_reference: str | None = Field(default=None, alias="clientReference")

    model_config = ConfigDict(populate_by_name=True)


def _econet_report(message: SmsMessage, outcome: SmsOutcome) -> dict[str, Any]:
    return {
        "messageId": message.id,
        "destination": message.to,
        "state": outcome,
        "errorCode": "000" if outcome == "DELIVERED" else "001",
        "doneDate": datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
    }


@econet.post("/messages", status_code=201)
async def econet_send(
    body: EconetMessage,
    store: SmsStoreDep,
    dispatcher: DispatcherDep,
    urls: CallbackUrlsDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    if authorization != f"ApiKey {settings.econet_api_key}":
        raise _unauthorized("Econet")
    message = _accept(
        store,
        dispatcher,
        provider="econet",
        idempotency_key=idempotency_key or body.client_reference,
        message_id=secrets.token_hex(12),
        to=body.destination,
        text=body.text,
        sender=body.source,
        callback_url=body.dlr_url or urls.get("econet"),
        report=_econet_report,
    )
    return {
        "messageId": message.id,
        "state": "QUEUED",
        "parts": message.segments,
        "clientReference": body.client_reference,
    }


# --- Generic gateway ----------------------------------------------------------------------------------

generic = APIRouter(prefix="/generic/sms", tags=["sms: generic"], dependencies=[Depends(fault_gate("generic_sms"))])


class GenericSms(BaseModel):
    to: str = Field(pattern=MSISDN)
    text: str = Field(min_length=1, max_length=1600)
    sender: str | None = Field(default=None, alias="from", max_length=11)
    callback_url: str | None = None
    client_ref: str | None = Field(default=None, max_length=255)

    model_config = ConfigDict(populate_by_name=True)


def _generic_report(message: SmsMessage, outcome: SmsOutcome) -> dict[str, Any]:
    return {"id": message.id, "to": message.to, "status": outcome, "timestamp": datetime.now(UTC).isoformat()}


@generic.post("/send")
async def generic_send(
    body: GenericSms,
    store: SmsStoreDep,
    dispatcher: DispatcherDep,
    urls: CallbackUrlsDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    if authorization != f"Bearer {settings.generic_sms_api_key}":
        raise _unauthorized("generic gateway")
    message = _accept(
        store,
        dispatcher,
        provider="generic_sms",
        idempotency_key=idempotency_key or body.client_ref,
        message_id=f"gen-{secrets.token_hex(10)}",
        to=body.to,
        text=body.text,
        sender=body.sender,
        callback_url=body.callback_url or urls.get("generic_sms"),
        report=_generic_report,
    )
    return {"id": message.id, "status": "queued", "segments": message.segments, "client_ref": body.client_ref}


routers = (telone, econet, generic)
