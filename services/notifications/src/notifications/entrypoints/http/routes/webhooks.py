"""Outbound webhook endpoints (register, list, delete), their deliveries and attempts, and replay."""

import asyncio
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl
from servicekit.auth import Principal
from servicekit.http import CurrentPrincipal, SessionDep
from servicekit.problems import Problem
from sqlalchemy import select, text
from sqlmodel import col

from notifications.adapters.tables import WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow
from notifications.domain.routing import ROUTES
from notifications.domain.ssrf import UnsafeTarget, check_target
from notifications.entrypoints.http.dependencies import ComponentsDep
from notifications.service_layer.webhooks import WEBHOOK_CHANNEL, new_secret

router = APIRouter(prefix="/api/v1/webhooks", tags=["outbound webhooks"])

EVENT_TYPES = sorted(r.event_type for r in ROUTES)


class RegisterEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    event_types: list[str] = Field(min_length=1, max_length=50, description=f"'*' or any of: {', '.join(EVENT_TYPES)}")
    description: str | None = Field(default=None, max_length=500)
    owner_email: EmailStr | None = None
    school_id: UUID | None = None


class EndpointOut(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    description: str | None
    school_id: UUID | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime


class CreatedEndpoint(EndpointOut):
    secret: str = Field(description="shown once: verify each delivery's webhook-signature with it")


class AttemptOut(BaseModel):
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime


class DeliveryOut(BaseModel):
    id: UUID
    event_id: UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    attempt_log: list[AttemptOut]


def _allowed(principal: Principal) -> None:
    if principal.role not in {"platform_admin", "school_admin"}:
        raise Problem(403, "Forbidden", "Webhook endpoints are managed by platform and school admins.")


def _out(row: WebhookEndpointRow) -> dict[str, Any]:
    return row.model_dump(include=set(EndpointOut.model_fields))


async def _endpoint(session: Any, principal: Principal, endpoint_id: UUID) -> WebhookEndpointRow:
    _allowed(principal)
    row: WebhookEndpointRow | None = await session.get(WebhookEndpointRow, endpoint_id)
    if row is None or row.deleted or (not principal.is_platform_admin and row.school_id != principal.school_id):
        raise Problem(404, "Not Found", "No such webhook endpoint.")
    return row


@router.post("/endpoints", status_code=status.HTTP_201_CREATED, response_model=CreatedEndpoint)
async def register_endpoint(
    body: RegisterEndpoint, principal: CurrentPrincipal, session: SessionDep, components: ComponentsDep
) -> CreatedEndpoint:
    _allowed(principal)
    unknown = sorted(set(body.event_types) - {*EVENT_TYPES, "*"})
    if unknown:
        raise Problem(422, "Unprocessable Content", f"Unknown event types: {', '.join(unknown)}.", known=EVENT_TYPES)
    school_id = body.school_id if principal.is_platform_admin else principal.school_id
    if not principal.is_platform_admin and body.school_id not in {None, principal.school_id}:
        raise Problem(403, "Forbidden", "A school admin can only register endpoints for their own school.")
    try:
        await asyncio.to_thread(check_target, str(body.url), allow_private=components.settings.allow_private_targets)
    except UnsafeTarget as exc:
        raise Problem(422, "Unprocessable Content", f"The target URL is not allowed: {exc}") from None
    secret = new_secret()
    row = WebhookEndpointRow(
        url=str(body.url),
        description=body.description,
        event_types=sorted(set(body.event_types)),
        secret_enc=components.vault.encrypt(secret),
        school_id=school_id,
        owner_email_enc=components.vault.encrypt(str(body.owner_email)) if body.owner_email else None,
        created_by=principal.sub,
    )
    session.add(row)
    await session.flush()
    return CreatedEndpoint.model_validate({**_out(row), "secret": secret})


@router.get("/endpoints", response_model=list[EndpointOut])
async def list_endpoints(principal: CurrentPrincipal, session: SessionDep) -> list[EndpointOut]:
    _allowed(principal)
    query = select(WebhookEndpointRow).where(col(WebhookEndpointRow.deleted).is_(False))
    if not principal.is_platform_admin:
        query = query.where(col(WebhookEndpointRow.school_id) == principal.school_id)
    rows = (await session.scalars(query.order_by(col(WebhookEndpointRow.created_at)))).all()
    return [EndpointOut.model_validate(_out(r)) for r in rows]


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(endpoint_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> EndpointOut:
    return EndpointOut.model_validate(_out(await _endpoint(session, principal, endpoint_id)))


@router.delete("/endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(endpoint_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> Response:
    row = await _endpoint(session, principal, endpoint_id)
    row.deleted, row.enabled = True, False  # kept (soft-deleted) so its delivery log stays readable
    session.add(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/endpoints/{endpoint_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    endpoint_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    await _endpoint(session, principal, endpoint_id)
    deliveries = (
        await session.scalars(
            select(WebhookDeliveryRow)
            .where(col(WebhookDeliveryRow.endpoint_id) == endpoint_id)
            .order_by(col(WebhookDeliveryRow.created_at).desc())
            .limit(limit)
        )
    ).all()
    ids = [d.id for d in deliveries]
    attempts = (
        (
            await session.scalars(
                select(WebhookAttemptRow)
                .where(col(WebhookAttemptRow.delivery_id).in_(ids))
                .order_by(col(WebhookAttemptRow.id))
            )
        ).all()
        if ids
        else []
    )
    by_delivery: dict[UUID, list[AttemptOut]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_id, []).append(AttemptOut.model_validate(a.model_dump()))
    return [
        DeliveryOut.model_validate({**d.model_dump(), "attempt_log": by_delivery.get(d.id, [])}) for d in deliveries
    ]


@router.post("/deliveries/{delivery_id}/replay", status_code=status.HTTP_202_ACCEPTED, response_model=DeliveryOut)
async def replay_delivery(delivery_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> DeliveryOut:
    delivery: WebhookDeliveryRow | None = await session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
    if delivery is None:
        raise Problem(404, "Not Found", "No such delivery.")
    endpoint = await _endpoint(session, principal, delivery.endpoint_id)
    if not endpoint.enabled:
        raise Problem(409, "Conflict", "The endpoint is disabled; register it again before replaying.")
    if delivery.status in {"pending", "sending"}:
        raise Problem(409, "Conflict", "The delivery is still in progress.")
    await session.execute(
        text(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), "
            "updated_at = now() WHERE id = :id"
        ),
        {"id": delivery_id},
    )
    await session.execute(text("SELECT pg_notify(:c, '')"), {"c": WEBHOOK_CHANNEL})
    await session.refresh(delivery)
    return DeliveryOut.model_validate({**delivery.model_dump(), "attempt_log": []})
