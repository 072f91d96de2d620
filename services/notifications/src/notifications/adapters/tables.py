"""The notifications database. Own SQLModel registry: this service's tables only, never another's.

Addresses (phone numbers, e-mails) are stored only encrypted (`*_enc`) with a keyed hash (`*_hash`)
for lookups and uniqueness; the masked form is kept for the communication log.
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Column, DateTime, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class NotificationsModel(SQLModel, registry=registry()):
    pass


metadata = NotificationsModel.metadata


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default_factory=_now if not nullable else lambda: None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


class RecipientRow(NotificationsModel, table=True):
    """A contact: the one carried by an order's events (source `order`) or one registered through the API."""

    __tablename__ = "recipients"
    __table_args__ = (
        Index(
            "uq_recipients_order_contact",
            "order_id",
            unique=True,
            postgresql_where=text("source = 'order'"),
        ),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    school_id: UUID = Field(index=True)
    order_id: UUID | None = Field(default=None, index=True)
    source: str = "api"
    name: str
    language: str = "en"
    phone_enc: str | None = None
    phone_hash: str | None = Field(default=None, index=True)
    email_enc: str | None = None
    email_hash: str | None = Field(default=None, index=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class DeferredEventRow(NotificationsModel, table=True):
    """An order event that arrived before the order's contact was known: replayed when it is."""

    __tablename__ = "deferred_events"

    event_id: UUID = Field(primary_key=True)
    order_id: UUID = Field(index=True)
    event_type: str
    envelope: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _ts()


class MessageRow(NotificationsModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("event_id", "recipient_hash", "channel", name="uq_messages_event_recipient_channel"),
        Index(
            "ix_messages_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    event_id: UUID
    event_type: str
    order_id: UUID | None = Field(default=None, index=True)
    school_id: UUID | None = Field(default=None, index=True)
    bulk_id: UUID | None = Field(default=None, index=True)
    recipient_hash: str = Field(index=True)
    address_enc: str
    address_masked: str
    channel: str = Field(index=True)
    template: str
    language: str = "en"
    urgent: bool = False
    subject: str | None = None
    body: str
    html: str | None = None
    wa_template: str | None = None
    wa_params: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    status: str = Field(default="pending", index=True)
    provider: str | None = None
    provider_message_id: str | None = Field(default=None, index=True)
    segments: int | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = _ts()
    lease_until: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class MessageAttemptRow(NotificationsModel, table=True):
    __tablename__ = "message_attempts"

    id: int | None = Field(default=None, primary_key=True)
    message_id: UUID = Field(index=True, foreign_key="messages.id")
    provider: str
    outcome: str  # accepted | error | rate_limited | circuit_open
    provider_message_id: str | None = None
    error: str | None = None
    attempted_at: datetime = _ts()


class PreferenceRow(NotificationsModel, table=True):
    """Per address (keyed hash) and channel: opt-out (STOP) and quiet hours."""

    __tablename__ = "preferences"

    address_hash: str = Field(primary_key=True)
    channel: str = Field(primary_key=True)
    opted_out: bool = False
    quiet_start: int | None = None
    quiet_end: int | None = None
    timezone: str | None = None
    updated_at: datetime = _ts()


class WebhookEndpointRow(NotificationsModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    url: str
    description: str | None = None
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    secret_enc: str
    school_id: UUID | None = Field(default=None, index=True)
    owner_email_enc: str | None = None
    created_by: str
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = _ts(nullable=True)
    deleted: bool = False
    created_at: datetime = _ts()


class WebhookDeliveryRow(NotificationsModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    endpoint_id: UUID = Field(index=True, foreign_key="webhook_endpoints.id")
    event_id: UUID
    event_type: str
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    status: str = Field(default="pending", index=True)  # pending | sending | succeeded | failed
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime = _ts()
    lease_until: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class WebhookAttemptRow(NotificationsModel, table=True):
    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: UUID = Field(index=True, foreign_key="webhook_deliveries.id")
    attempt: int
    status_code: int | None = None
    error: str | None = None
    duration_ms: int
    attempted_at: datetime = _ts()


class BulkJobRow(NotificationsModel, table=True):
    __tablename__ = "bulk_jobs"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    created_by: str
    channel: str
    template: str
    variables: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    urgent: bool = False
    total: int
    chunks: int = 0
    chunks_done: int = 0
    status: str = "fanning_out"  # fanning_out | sending (completion is computed from its messages)
    created_at: datetime = _ts()


class JobProgressMarkRow(NotificationsModel, table=True):
    """Which progress marks (25/50/75 %) of a migration job were already announced."""

    __tablename__ = "job_progress_marks"

    job_id: UUID = Field(primary_key=True)
    mark: int = Field(primary_key=True)


class DeliveryReportRow(NotificationsModel, table=True):
    """Every provider callback, stored raw first; `applied` once it updated its message.

    A report can beat the dispatcher's own record of the send (providers answer fast), so an
    unmatched report waits here and is applied when the send is recorded.
    """

    __tablename__ = "delivery_reports"

    id: int | None = Field(default=None, primary_key=True)
    provider: str
    provider_message_id: str = Field(index=True)
    status: str
    error: str | None = None
    raw: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    applied: bool = False
    received_at: datetime = _ts()
