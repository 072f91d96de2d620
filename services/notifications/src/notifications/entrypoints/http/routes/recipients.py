"""School contacts registered through the API, and recipient preferences (opt-out, quiet hours)."""

from datetime import datetime
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from servicekit.auth import Principal
from servicekit.http import CurrentPrincipal, SessionDep
from servicekit.problems import Problem
from sqlalchemy import select
from sqlmodel import col

from notifications.adapters.tables import RecipientRow
from notifications.domain.phone import InvalidPhoneNumber, mask, mask_email, to_e164
from notifications.entrypoints.http.dependencies import ComponentsDep
from notifications.service_layer import preferences

router = APIRouter(prefix="/api/v1/notifications", tags=["recipients and preferences"])


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: EmailStr | None = None
    language: Literal["en", "sn", "nd"] = "en"
    school_id: UUID | None = None


class RecipientOut(BaseModel):
    id: UUID
    school_id: UUID
    name: str
    language: str
    phone: str | None
    email: str | None
    created_at: datetime


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=3, max_length=320, description="phone number or e-mail address")
    channel: Literal["sms", "whatsapp", "email"]
    opted_out: bool | None = None
    quiet_start: int | None = Field(default=None, ge=0, le=23)
    quiet_end: int | None = Field(default=None, ge=0, le=23)
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


def _school(principal: Principal, requested: UUID | None) -> UUID:
    if principal.is_platform_admin and requested is not None:
        return requested
    if principal.role == "school_admin" and requested in {None, principal.school_id}:
        assert principal.school_id is not None
        return principal.school_id
    raise Problem(403, "Forbidden", "School admins manage their own school's contacts; platform admins name a school.")


def _out(row: RecipientRow, components: ComponentsDep) -> RecipientOut:
    vault = components.vault
    return RecipientOut(
        id=row.id,
        school_id=row.school_id,
        name=row.name,
        language=row.language,
        phone=mask(vault.decrypt(row.phone_enc)) if row.phone_enc else None,
        email=mask_email(vault.decrypt(row.email_enc)) if row.email_enc else None,
        created_at=row.created_at,
    )


@router.post("/recipients", status_code=status.HTTP_201_CREATED, response_model=RecipientOut)
async def register_recipient(
    body: RecipientIn, principal: CurrentPrincipal, session: SessionDep, components: ComponentsDep
) -> RecipientOut:
    school_id = _school(principal, body.school_id)
    if body.phone is None and body.email is None:
        raise Problem(422, "Unprocessable Content", "A contact needs a phone number or an e-mail address.")
    try:
        phone = to_e164(body.phone) if body.phone else None
    except InvalidPhoneNumber as exc:
        raise Problem(422, "Unprocessable Content", str(exc)) from None
    email = str(body.email).lower() if body.email else None
    vault = components.vault
    row = RecipientRow(
        school_id=school_id,
        source="api",
        name=body.name,
        language=body.language,
        phone_enc=vault.encrypt(phone) if phone else None,
        phone_hash=vault.blind_index(phone) if phone else None,
        email_enc=vault.encrypt(email) if email else None,
        email_hash=vault.blind_index(email) if email else None,
    )
    session.add(row)
    await session.flush()
    return _out(row, components)


@router.get("/recipients", response_model=list[RecipientOut])
async def list_recipients(
    principal: CurrentPrincipal, session: SessionDep, components: ComponentsDep, school_id: UUID | None = None
) -> list[RecipientOut]:
    school = _school(principal, school_id)
    rows = (
        await session.scalars(
            select(RecipientRow)
            .where(col(RecipientRow.school_id) == school, col(RecipientRow.source) == "api")
            .order_by(col(RecipientRow.created_at))
        )
    ).all()
    return [_out(r, components) for r in rows]


@router.delete("/recipients/{recipient_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_recipient(recipient_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> Response:
    row = await session.get(RecipientRow, recipient_id)
    if row is None or row.source != "api" or (not principal.is_platform_admin and row.school_id != principal.school_id):
        raise Problem(404, "Not Found", "No such contact.")
    await session.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/preferences", status_code=status.HTTP_204_NO_CONTENT)
async def set_preference(
    body: PreferenceIn, principal: CurrentPrincipal, session: SessionDep, components: ComponentsDep
) -> Response:
    if principal.role not in {"platform_admin", "school_admin"}:
        raise Problem(403, "Forbidden", "Preferences are set by platform and school admins.")
    if (body.quiet_start is None) != (body.quiet_end is None):
        raise Problem(422, "Unprocessable Content", "quiet_start and quiet_end go together.")
    try:
        address = components.normalise(body.address)
    except InvalidPhoneNumber as exc:
        raise Problem(422, "Unprocessable Content", str(exc)) from None
    hashed = components.vault.blind_index(address)
    if not principal.is_platform_admin:
        # A school's admin speaks for the school's own contacts only: an opt-out suppresses the address's
        # waiting messages of every school.
        column = RecipientRow.email_hash if body.channel == "email" else RecipientRow.phone_hash
        own = await session.scalar(
            select(col(RecipientRow.id))
            .where(col(RecipientRow.school_id) == principal.school_id, col(column) == hashed)
            .limit(1)
        )
        if own is None:
            raise Problem(404, "Not Found", "No contact of your school has that address.")
    await preferences.set_preference(
        session,
        hashed,
        body.channel,
        opted_out=body.opted_out,
        quiet_start=body.quiet_start,
        quiet_end=body.quiet_end,
        timezone=body.timezone,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
