"""The control / inspection API under ``/_sandbox``: what tests read, and the knobs they turn."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from sandbox.callbacks import BatchDelivery, Callback, DeliveryOptions
from sandbox.deps import CallbackUrlsDep, DispatcherDep, FaultsDep
from sandbox.faults import PROVIDERS, FaultSpec, FaultState
from sandbox.problems import ProblemError
from sandbox.providers.sms import SmsBehaviour, SmsStore
from sandbox.providers.whatsapp import WhatsAppBehaviour, WhatsAppStore
from sandbox.smtp_sink import EmailStore
from sandbox.state import Sandbox

router = APIRouter(prefix="/_sandbox", tags=["control"])


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(_sandbox)]


def _sms(sandbox: SandboxDep) -> SmsStore:
    return sandbox.sms


def _whatsapp(sandbox: SandboxDep) -> WhatsAppStore:
    return sandbox.whatsapp


def _emails(sandbox: SandboxDep) -> EmailStore:
    return sandbox.emails


@router.get("/health")
async def health(sandbox: SandboxDep) -> dict[str, Any]:
    return {"status": "ok", "smtp_port": sandbox.smtp.port}


@router.post("/noop")
async def noop() -> Response:
    return Response(status_code=200)


@router.post("/reset")
async def reset(sandbox: SandboxDep) -> dict[str, str]:
    sandbox.reset()
    return {"status": "reset"}


# --- messages -----------------------------------------------------------------------------------------


@router.get("/sms")
async def list_sms(
    store: Annotated[SmsStore, Depends(_sms)], to: str | None = None, provider: str | None = None
) -> list[dict[str, Any]]:
    return [m.as_json() for m in store.find(to=to, provider=provider)]


@router.get("/sms/count")
async def count_sms(store: Annotated[SmsStore, Depends(_sms)], provider: str | None = None) -> dict[str, int]:
    return {"count": len(store.find(provider=provider))}


@router.put("/sms/behaviour")
async def set_sms_behaviour(behaviour: SmsBehaviour, store: Annotated[SmsStore, Depends(_sms)]) -> SmsBehaviour:
    store.behaviour = behaviour
    return behaviour


@router.get("/whatsapp")
async def list_whatsapp(
    store: Annotated[WhatsAppStore, Depends(_whatsapp)], to: str | None = None
) -> list[dict[str, Any]]:
    return [m.as_json() for m in store.find(to=to)]


@router.put("/whatsapp/behaviour")
async def set_whatsapp_behaviour(
    behaviour: WhatsAppBehaviour, store: Annotated[WhatsAppStore, Depends(_whatsapp)]
) -> WhatsAppBehaviour:
    store.behaviour = behaviour
    return behaviour


@router.get("/emails")
async def list_emails(store: Annotated[EmailStore, Depends(_emails)], to: str | None = None) -> list[dict[str, Any]]:
    return [m.as_json() for m in store.find(to)]


# --- faults -------------------------------------------------------------------------------------------


def _known(provider: str) -> str:
    if provider not in PROVIDERS:
        raise ProblemError(404, f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
    return provider


@router.get("/faults")
async def list_faults(faults: FaultsDep) -> dict[str, FaultState]:
    return faults.all()


@router.post("/faults/{provider}")
async def set_fault(provider: str, spec: FaultSpec, faults: FaultsDep) -> FaultState:
    return faults.set(_known(provider), spec)


@router.get("/faults/{provider}")
async def get_fault(provider: str, faults: FaultsDep) -> FaultState:
    state = faults.get(_known(provider))
    if state is None:
        raise ProblemError(404, f"no fault set for {provider}")
    return state


@router.delete("/faults/{provider}", status_code=204)
async def clear_fault(provider: str, faults: FaultsDep) -> None:
    faults.clear(_known(provider))


# --- callbacks (webhooks, delivery reports) -----------------------------------------------------------


class CallbackUrl(BaseModel):
    url: str = Field(min_length=1)


@router.get("/callback-urls")
async def callback_urls(urls: CallbackUrlsDep) -> dict[str, str]:
    return urls.all()


@router.put("/callback-urls/{provider}")
async def set_callback_url(provider: str, body: CallbackUrl, urls: CallbackUrlsDep) -> dict[str, str]:
    try:
        urls.set(provider, body.url)
    except KeyError:
        raise ProblemError(404, f"no callbacks for provider {provider!r}") from None
    return urls.all()


def _callback(dispatcher: DispatcherDep, callback_id: str) -> Callback:
    callback = dispatcher.get(callback_id)
    if callback is None:
        raise ProblemError(404, f"no callback {callback_id}")
    return callback


@router.get("/callbacks")
async def list_callbacks(
    dispatcher: DispatcherDep, provider: str | None = None, kind: str | None = None, subject: str | None = None
) -> list[dict[str, Any]]:
    return [cb.as_json() for cb in dispatcher.find(provider=provider, kind=kind, subject=subject)]


@router.get("/callbacks/{callback_id}")
async def get_callback(callback_id: str, dispatcher: DispatcherDep) -> dict[str, Any]:
    return _callback(dispatcher, callback_id).as_json()


@router.post("/callbacks/{callback_id}/replay", status_code=202)
async def replay_callback(
    callback_id: str, dispatcher: DispatcherDep, options: DeliveryOptions | None = None
) -> dict[str, Any]:
    callback = _callback(dispatcher, callback_id)
    dispatcher.dispatch(callback, options or DeliveryOptions())
    return {"replayed": callback.id}


@router.post("/callbacks/deliver", status_code=202)
async def deliver_batch(batch: BatchDelivery, dispatcher: DispatcherDep) -> dict[str, Any]:
    callbacks = [_callback(dispatcher, callback_id) for callback_id in batch.event_ids]
    return {"order": dispatcher.dispatch_batch(callbacks, batch)}
