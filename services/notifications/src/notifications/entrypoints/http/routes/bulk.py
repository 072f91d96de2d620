"""Bulk sends (platform admins): one message to up to 100,000 recipients, with queryable progress."""

from datetime import datetime
from typing import Literal, Self
from uuid import UUID

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator
from servicekit.auth import Principal
from servicekit.http import CurrentPrincipal, SessionDep
from servicekit.problems import Problem

from notifications.domain.phone import InvalidPhoneNumber, to_e164
from notifications.entrypoints.http.dependencies import ComponentsDep
from notifications.service_layer import bulk

router = APIRouter(prefix="/api/v1/notifications/bulk", tags=["bulk"])


def _platform_admin(principal: Principal) -> None:
    if not principal.is_platform_admin:
        raise Problem(403, "Forbidden", "Bulk sends are for platform admins.")


class BulkRecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: EmailStr | None = None
    language: Literal["en", "sn", "nd"] = "en"


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["sms", "whatsapp", "email"]
    text: str = Field(min_length=1, max_length=1600)
    subject: str = Field(default="OneClass", max_length=200)
    urgent: bool = False
    recipients: list[BulkRecipientIn] = Field(min_length=1, max_length=100_000)

    @model_validator(mode="after")
    def _addresses_fit_the_channel(self) -> Self:
        field = "email" if self.channel == "email" else "phone"
        missing = [i for i, r in enumerate(self.recipients) if getattr(r, field) is None]
        if missing:
            raise ValueError(f"recipients without {field} for {self.channel}: {missing[:20]}")
        return self


class BulkProgress(BaseModel):
    id: UUID
    channel: str
    total: int
    planned: int
    chunks: int
    chunks_done: int
    counts: dict[str, int]
    status: str
    created_at: datetime


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=BulkProgress)
async def start_bulk(
    body: BulkRequest, principal: CurrentPrincipal, session: SessionDep, components: ComponentsDep
) -> BulkProgress:
    _platform_admin(principal)
    if len(body.recipients) > components.settings.bulk_max_recipients:
        raise Problem(422, "Unprocessable Content", f"At most {components.settings.bulk_max_recipients} recipients.")
    recipients, invalid = [], []
    for index, r in enumerate(body.recipients):
        phone = None
        if r.phone is not None:
            try:
                phone = to_e164(r.phone)
            except InvalidPhoneNumber:
                invalid.append(index)
                continue
        recipients.append(bulk.BulkRecipient(r.name, r.language, phone, str(r.email) if r.email else None))
    if invalid:
        raise Problem(
            422, "Unprocessable Content", f"{len(invalid)} invalid phone number(s).", invalid_indices=invalid[:100]
        )
    job = await bulk.start_bulk(
        session,
        components.vault,
        created_by=principal.sub,
        channel=body.channel,
        subject=body.subject,
        text_=body.text,
        urgent=body.urgent,
        recipients=recipients,
        chunk_size=components.settings.bulk_chunk_size,
    )
    found = await bulk.progress(session, job.id)
    assert found is not None
    return BulkProgress.model_validate(found)


@router.get("/{bulk_id}", response_model=BulkProgress)
async def bulk_progress(bulk_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> BulkProgress:
    _platform_admin(principal)
    found = await bulk.progress(session, bulk_id)
    if found is None:
        raise Problem(404, "Not Found", "No such bulk send.")
    return BulkProgress.model_validate(found)
