"""Provider callbacks: delivery reports (SMS gateways, WhatsApp statuses) and inbound STOP replies."""

import hmac
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from servicekit.http import SessionDep
from servicekit.problems import Problem

from notifications.adapters.providers.whatsapp import valid_hub_signature
from notifications.entrypoints.http.addresses import normalised_or_422
from notifications.entrypoints.http.dependencies import ComponentsDep
from notifications.service_layer import preferences, reports

router = APIRouter(prefix="/api/v1/notifications", tags=["provider callbacks"])


async def _check_token(components: ComponentsDep, request: Request) -> None:
    """Runs before the request's transaction opens: an unauthenticated callback costs no database work."""
    expected = components.settings.callback_token
    if expected is None or request.path_params.get("provider") == "whatsapp":  # WhatsApp is signed instead
        return
    given = request.query_params.get("token", "")
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Problem(401, "Unauthorized", "The callback token is missing or wrong.")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        raise Problem(400, "Bad Request", "The body is not JSON.") from None
    if not isinstance(body, dict):
        raise Problem(422, "Unprocessable Content", "The body must be a JSON object.")
    return body


@router.get(
    "/delivery-reports/whatsapp", summary="Meta's webhook verification handshake", response_class=PlainTextResponse
)
async def whatsapp_verify(
    components: ComponentsDep,
    mode: Annotated[str, Query(alias="hub.mode")],
    verify_token: Annotated[str, Query(alias="hub.verify_token")],
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=200)],
) -> str:
    expected = components.settings.whatsapp_verify_token.get_secret_value()
    if mode != "subscribe" or not hmac.compare_digest(verify_token, expected):
        raise Problem(403, "Forbidden", "Webhook verification failed.")
    return challenge


@router.post(
    "/delivery-reports/{provider}",
    dependencies=[Depends(_check_token)],
    summary="A provider's delivery report (or WhatsApp status webhook)",
)
async def delivery_report(
    provider: Literal["telone", "econet", "generic", "whatsapp"],
    request: Request,
    session: SessionDep,
    components: ComponentsDep,
) -> dict[str, Any]:
    if provider == "whatsapp":
        raw = await request.body()
        if not valid_hub_signature(
            raw, request.headers.get("X-Hub-Signature-256"), components.settings.whatsapp_app_secret
        ):
            raise Problem(401, "Unauthorized", "X-Hub-Signature-256 does not match the body.")
    body = await _json_body(request)
    try:
        parsed = reports.parse(provider, body)
    except reports.UnreadableReport as exc:
        raise Problem(422, "Unprocessable Content", str(exc)) from None
    applied = [await reports.record(session, r, body) for r in parsed]
    return {"received": len(parsed), "applied": sum(applied)}


class InboundSms(BaseModel):
    from_: str = Field(alias="from", min_length=3, max_length=32)
    text: str = Field(max_length=1600)


@router.post(
    "/inbound/sms",
    dependencies=[Depends(_check_token)],
    summary="An inbound SMS (reply): STOP opts the sender out of SMS",
)
async def inbound_sms(body: InboundSms, session: SessionDep, components: ComponentsDep) -> dict[str, Any]:
    address = normalised_or_422(components, body.from_, "from")
    stopped = await preferences.handle_reply(session, components.vault, address, body.text)
    return {"opted_out": stopped}
