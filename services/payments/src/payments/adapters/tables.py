"""The payments database. Own SQLModel registry: this service's tables only, never another's."""

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class PaymentsModel(SQLModel, registry=registry()):
    pass


metadata = PaymentsModel.metadata


def now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=now if not nullable else None, sa_column=Column(DateTime(timezone=True), nullable=nullable)
    )


class PlanRow(PaymentsModel, table=True):
    __tablename__ = "payment_plans"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    order_id: UUID = Field(unique=True)
    school_id: UUID = Field(index=True)
    payment_option: str
    currency: str
    total_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = "active"  # active | paid | cancelled
    contact: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _ts()


class InstallmentRow(PaymentsModel, table=True):
    __tablename__ = "installments"
    __table_args__ = (UniqueConstraint("plan_id", "sequence"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    plan_id: UUID = Field(foreign_key="payment_plans.id", index=True)
    order_id: UUID = Field(index=True)
    school_id: UUID
    sequence: int
    label: str
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    due: str  # at_signing | at_go_live | on_date
    due_date: date | None = None
    status: str = "open"  # open | paid | cancelled
    paid_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    due_announced_at: datetime | None = _ts(nullable=True)
    overdue_announced_at: datetime | None = _ts(nullable=True)


class PaymentRow(PaymentsModel, table=True):
    """One attempt to pay an installment through one provider."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("installment_id", "idempotency_key"),
        UniqueConstraint("provider", "provider_reference"),
        Index("ix_payments_open", "status", "created_at", postgresql_where="status IN ('pending', 'processing')"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    installment_id: UUID = Field(foreign_key="installments.id", index=True)
    order_id: UUID = Field(index=True)
    school_id: UUID
    provider: str  # stripe | paynow | ecocash | onemoney
    method: str  # card | web | ecocash | onemoney
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    status: str = "pending"
    idempotency_key: str
    provider_reference: str | None = None
    poll_url: str | None = None
    phone: str | None = None
    checkout: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    refunded_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    failure_reason: str | None = None
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class RefundRow(PaymentsModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("payment_id", "idempotency_key"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    payment_id: UUID = Field(foreign_key="payments.id", index=True)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    status: str = "pending"  # pending | succeeded | failed
    idempotency_key: str
    reason: str | None = None
    provider_reference: str | None = None
    requested_by: str
    created_at: datetime = _ts()
    confirmed_at: datetime | None = _ts(nullable=True)


class WebhookRow(PaymentsModel, table=True):
    """Every delivery as it arrived, before anything is believed: the raw inbox of provider webhooks."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        Index("ix_webhook_inbox_received", "id", postgresql_where="status = 'received'"),
        Index("ix_webhook_inbox_event", "provider", "event_key"),
        Index("ux_webhook_inbox_dedupe", "dedupe_key", unique=True),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    provider: str
    event_key: str | None = None  # the provider's event id; PayNow: reference + status
    # "<provider family>:<event key>" of a delivery whose signature or hash was verified on arrival; a
    # repeat of it is not stored again. None for refused deliveries and unsigned (EcoCash) hints.
    dedupe_key: str | None = None
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = _ts()
    status: str = "received"  # received | applied | duplicate | rejected | quarantined | failed
    reason: str | None = None
    attempts: int = 0
    payment_id: UUID | None = None
    processed_at: datetime | None = _ts(nullable=True)
    # A delivery that failed to apply waits until then (the intake's INSERT leaves the default: now).
    next_attempt_at: datetime = Field(
        default_factory=now,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class AppliedEventRow(PaymentsModel, table=True):
    """Provider events whose effect has happened: a second delivery finds its key here and is a no-op."""

    __tablename__ = "applied_provider_events"

    provider: str = Field(primary_key=True)
    event_key: str = Field(primary_key=True)
    webhook_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    applied_at: datetime = _ts()


class JobRunRow(PaymentsModel, table=True):
    """Scheduled job runs: which replica ran what, and what it found."""

    __tablename__ = "job_runs"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    job: str = Field(index=True)
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
