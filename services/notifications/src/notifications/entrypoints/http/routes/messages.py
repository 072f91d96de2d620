"""The communication log: every message, its status and its attempts."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel
from servicekit.auth import Principal
from servicekit.http import CurrentPrincipal, SessionDep
from servicekit.problems import Problem
from sqlalchemy import ColumnElement, func, select
from sqlmodel import col

from notifications.adapters.tables import MessageAttemptRow, MessageRow
from notifications.entrypoints.http.addresses import normalised_or_422
from notifications.entrypoints.http.dependencies import ComponentsDep

router = APIRouter(prefix="/api/v1/notifications/messages", tags=["communication log"])

Status = Literal["pending", "sending", "sent", "delivered", "read", "failed", "suppressed"]


class AttemptOut(BaseModel):
    provider: str
    outcome: str
    provider_message_id: str | None
    error: str | None
    attempted_at: datetime


class MessageOut(BaseModel):
    id: UUID
    event_id: UUID
    event_type: str
    order_id: UUID | None
    school_id: UUID | None
    bulk_id: UUID | None
    channel: str
    recipient: str
    template: str
    language: str
    urgent: bool
    subject: str | None
    body: str
    status: str
    provider: str | None
    provider_message_id: str | None
    segments: int | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime


class MessagePage(BaseModel):
    items: list[MessageOut]
    total: int
    limit: int
    offset: int


def _out(row: MessageRow) -> MessageOut:
    return MessageOut.model_validate({**row.model_dump(), "recipient": row.address_masked})


def _scope(principal: Principal, school_id: UUID | None) -> UUID | None:
    """Platform admins see every school; a school admin only their own."""
    if principal.is_platform_admin:
        return school_id
    if principal.role == "school_admin":
        if school_id is not None and school_id != principal.school_id:
            raise Problem(403, "Forbidden", "A school admin can only read their own school's messages.")
        return principal.school_id
    raise Problem(403, "Forbidden", "The communication log is for platform and school admins.")


@router.get("", response_model=MessagePage)
async def list_messages(
    principal: CurrentPrincipal,
    session: SessionDep,
    components: ComponentsDep,
    order_id: UUID | None = None,
    school_id: UUID | None = None,
    recipient: Annotated[str | None, Query(description="phone number or e-mail address")] = None,
    channel: Literal["sms", "whatsapp", "email"] | None = None,
    status: Status | None = None,
    bulk_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> MessagePage:
    scope = _scope(principal, school_id)
    conditions: list[ColumnElement[bool]] = []
    if scope is not None or not principal.is_platform_admin:
        conditions.append(col(MessageRow.school_id) == scope)
    if order_id is not None:
        conditions.append(col(MessageRow.order_id) == order_id)
    if recipient:
        normalised = normalised_or_422(components, recipient, "recipient")
        conditions.append(col(MessageRow.recipient_hash) == components.vault.blind_index(normalised))
    if channel is not None:
        conditions.append(col(MessageRow.channel) == channel)
    if status is not None:
        conditions.append(col(MessageRow.status) == status)
    if bulk_id is not None:
        conditions.append(col(MessageRow.bulk_id) == bulk_id)
    total: int | None = await session.scalar(select(func.count(col(MessageRow.id))).where(*conditions))
    rows = (
        await session.scalars(
            select(MessageRow)
            .where(*conditions)
            .order_by(col(MessageRow.created_at).desc(), col(MessageRow.id))
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return MessagePage(items=[_out(r) for r in rows], total=total or 0, limit=limit, offset=offset)


@router.get("/{message_id}/attempts", response_model=list[AttemptOut])
async def list_attempts(message_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> list[AttemptOut]:
    message = await session.get(MessageRow, message_id)
    if message is None or (not principal.is_platform_admin and message.school_id != _scope(principal, None)):
        raise Problem(404, "Not Found", "No such message.")
    rows = (
        await session.scalars(
            select(MessageAttemptRow)
            .where(col(MessageAttemptRow.message_id) == message_id)
            .order_by(col(MessageAttemptRow.id))
        )
    ).all()
    return [AttemptOut.model_validate(r.model_dump()) for r in rows]
