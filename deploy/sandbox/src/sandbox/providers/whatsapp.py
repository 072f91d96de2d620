"""WhatsApp Cloud API: send template/text messages, then post signed status webhooks."""

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field, model_validator

from sandbox.callbacks import BatchDelivery, Callback, CallbackDispatcher
from sandbox.deps import CallbackUrlsDep, DispatcherDep, SettingsDep, fault_gate
from sandbox.problems import ProblemError
from sandbox.settings import SandboxSettings
from sandbox.signing import hub_signature_256, wrong_secret

router = APIRouter(prefix="/whatsapp", tags=["whatsapp"], dependencies=[Depends(fault_gate("whatsapp"))])

Outcome = Literal["read", "delivered", "failed"]
_PROGRESSIONS: dict[str, tuple[str, ...]] = {
    "read": ("sent", "delivered", "read"),
    "delivered": ("sent", "delivered"),
    "failed": ("failed",),
}


class Language(BaseModel):
    code: str = Field(min_length=2)
    policy: str | None = None


class Template(BaseModel):
    name: str = Field(min_length=1)
    language: Language
    components: list[dict[str, Any]] = Field(default_factory=list)


class Text(BaseModel):
    body: str = Field(min_length=1, max_length=4096)
    preview_url: bool = False


class SendMessage(BaseModel):
    messaging_product: Literal["whatsapp"]
    recipient_type: Literal["individual"] = "individual"
    to: str = Field(pattern=r"^\+?[1-9]\d{6,14}$")
    type: Literal["template", "text"] = "text"
    template: Template | None = None
    text: Text | None = None

    @model_validator(mode="after")
    def _content_matches_type(self) -> Self:
        if getattr(self, self.type) is None:
            raise ValueError(f"type is {self.type!r} but no {self.type!r} object was given")
        return self


@dataclass
class WhatsAppMessage:
    id: str
    phone_number_id: str
    to: str
    type: str
    template: dict[str, Any] | None
    text: str | None
    received_at: datetime
    statuses: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phone_number_id": self.phone_number_id,
            "to": self.to,
            "type": self.type,
            "template": self.template,
            "text": self.text,
            "statuses": self.statuses,
            "received_at": self.received_at.isoformat(),
        }


class WhatsAppBehaviour(BaseModel):
    statuses: bool = True
    status_delay_ms: int = Field(default=0, ge=0, le=600_000, description="pause before each status")
    outcome: Outcome = "read"
    failing_numbers: list[str] = Field(default_factory=list)


class WhatsAppStore:
    def __init__(self, default_behaviour: WhatsAppBehaviour) -> None:
        self._default_behaviour = default_behaviour
        self.behaviour = default_behaviour.model_copy(deep=True)
        self.messages: list[WhatsAppMessage] = []
        self.by_key: dict[str, WhatsAppMessage] = {}

    def reset(self) -> None:
        self.behaviour = self._default_behaviour.model_copy(deep=True)
        self.messages.clear()
        self.by_key.clear()

    def find(self, *, to: str | None = None) -> list[WhatsAppMessage]:
        return [m for m in self.messages if to is None or m.to == to]


def _store(request: Request) -> WhatsAppStore:
    store: WhatsAppStore = request.app.state.sandbox.whatsapp
    return store


def _graph_error(status: int, code: int, message: str) -> ProblemError:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": secrets.token_hex(8)}
    return ProblemError(status, message, extra={"error": error})


def _status_payload(settings: SandboxSettings, message: WhatsAppMessage, status: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": message.id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": message.to.lstrip("+"),
    }
    if status == "failed":
        entry["errors"] = [
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message could not be delivered to the recipient"},
            }
        ]
    else:
        entry["conversation"] = {"id": secrets.token_hex(16), "origin": {"type": "utility"}}
        entry["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "utility"}
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": settings.whatsapp_business_account_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "263770000000",
                                "phone_number_id": message.phone_number_id,
                            },
                            "statuses": [entry],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def _schedule_statuses(
    store: WhatsAppStore,
    dispatcher: CallbackDispatcher,
    settings: SandboxSettings,
    url: str,
    message: WhatsAppMessage,
) -> None:
    behaviour = store.behaviour
    outcome = "failed" if message.to in behaviour.failing_numbers else behaviour.outcome

    def sign(body: bytes, bad: bool) -> dict[str, str]:
        secret = settings.whatsapp_app_secret
        return {"X-Hub-Signature-256": hub_signature_256(body, wrong_secret(secret) if bad else secret)}

    callbacks: list[Callback] = []
    for status in _PROGRESSIONS[outcome]:
        message.statuses.append(status)
        callbacks.append(
            dispatcher.record(
                provider="whatsapp",
                kind=f"status.{status}",
                subject=message.id,
                url=url,
                body=json.dumps(_status_payload(settings, message, status)).encode(),
                content_type="application/json",
                signer=sign,
            )
        )
    if behaviour.statuses:
        dispatcher.dispatch_batch(
            callbacks, BatchDelivery(event_ids=[c.id for c in callbacks], delay_ms=behaviour.status_delay_ms)
        )


@router.post("/{version}/{phone_number_id}/messages")
async def send_message(
    version: str,
    phone_number_id: str,
    body: SendMessage,
    store: Annotated[WhatsAppStore, Depends(_store)],
    dispatcher: DispatcherDep,
    urls: CallbackUrlsDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    if authorization != f"Bearer {settings.whatsapp_access_token}":
        raise _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
    # A repeated key is the same message: the original wamid, nothing stored or reported again.
    original = store.by_key.get(idempotency_key) if idempotency_key else None
    if original is not None:
        return _sent(body, original.id)
    wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
    message = WhatsAppMessage(
        id=wamid,
        phone_number_id=phone_number_id,
        to=body.to,
        type=body.type,
        template=body.template.model_dump() if body.template else None,
        text=body.text.body if body.text else None,
        received_at=datetime.now(UTC),
    )
    store.messages.append(message)
    if idempotency_key:
        store.by_key[idempotency_key] = message
    _schedule_statuses(store, dispatcher, settings, urls.get("whatsapp"), message)
    return _sent(body, wamid)


def _sent(body: SendMessage, wamid: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": body.to, "wa_id": body.to.lstrip("+")}],
        "messages": [{"id": wamid, **({"message_status": "accepted"} if body.type == "template" else {})}],
    }
