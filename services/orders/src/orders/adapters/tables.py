"""The orders database. Own SQLModel registry: this service's tables only, never another's.

The DDL lives in the Alembic revisions (with the row-level security policies); these classes mirror it.
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, Numeric, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class OrdersModel(SQLModel, registry=registry()):
    pass


metadata = OrdersModel.metadata


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=_now if not nullable else None, sa_column=Column(DateTime(timezone=True), nullable=nullable)
    )


def _json(nullable: bool = False) -> Any:
    return Field(default=None if nullable else ..., sa_column=Column(JSONB, nullable=nullable))


class CarePackageRow(OrdersModel, table=True):
    __tablename__ = "care_packages"

    code: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    name: str
    description: str = ""
    price_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    min_students: int
    max_students: int | None = None
    base_timeline_days: int
    created_by: str = "seed"
    created_at: datetime = _ts()


class AddOnRow(OrdersModel, table=True):
    __tablename__ = "add_ons"

    code: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    name: str
    price_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    timeline_percent: int = 100
    created_at: datetime = _ts()


class ExchangeRateRow(OrdersModel, table=True):
    __tablename__ = "exchange_rates"

    id: int | None = Field(default=None, primary_key=True)
    currency: str
    rate: Decimal = Field(sa_column=Column(Numeric(20, 6), nullable=False))
    effective_date: date
    created_by: str
    created_at: datetime = _ts()


class TeamMemberRow(OrdersModel, table=True):
    __tablename__ = "team_members"

    member: str = Field(primary_key=True)
    capacity: int = 3


class QuoteRow(OrdersModel, table=True):
    __tablename__ = "quotes"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    school_id: UUID | None = None
    created_by: str
    body: dict[str, Any] = _json()
    package_code: str
    total_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    created_at: datetime = _ts()


class OrderRow(OrdersModel, table=True):
    __tablename__ = "orders"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    school_id: UUID = Field(index=True)
    status: str = Field(default="pending", index=True)
    package_code: str
    package_version: int = 1
    student_count: int
    add_ons: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    payment_option: str
    months: int | None = None
    currency: str
    total_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    installments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    exchange_rate: dict[str, Any] | None = _json(nullable=True)
    contact: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    held_from: str | None = None
    team: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(Text), nullable=False))
    team_lead: str | None = None
    timeline_days: int = 0
    assessment: dict[str, Any] | None = _json(nullable=True)
    quote_id: UUID | None = None
    idempotency_key: str | None = None
    notes: str | None = None
    created_by: str
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    approved_at: datetime | None = _ts(nullable=True)
    closed_at: datetime | None = _ts(nullable=True)


class MilestoneRow(OrdersModel, table=True):
    __tablename__ = "milestones"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    order_id: UUID = Field(foreign_key="orders.id")
    school_id: UUID
    sequence: int
    name: str
    due_date: date | None = None
    status: str = "pending"
    completed_at: datetime | None = _ts(nullable=True)
    completed_by: str | None = None


class TaskRow(OrdersModel, table=True):
    __tablename__ = "tasks"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    order_id: UUID = Field(foreign_key="orders.id")
    school_id: UUID
    title: str
    description: str | None = None
    assignee: str | None = None
    due_date: date | None = None
    status: str = "todo"
    created_by: str
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class DataSourceRow(OrdersModel, table=True):
    __tablename__ = "data_sources"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    order_id: UUID = Field(foreign_key="orders.id")
    school_id: UUID
    kind: str
    name: str
    entity: str | None = None
    estimated_rows: int | None = None
    location: str
    secret: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_by: str
    created_at: datetime = _ts()


class InstallmentPaymentRow(OrdersModel, table=True):
    __tablename__ = "installment_payments"

    order_id: UUID = Field(foreign_key="orders.id", primary_key=True)
    sequence: int = Field(primary_key=True)
    school_id: UUID
    installment_id: UUID | None = None
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    status: str = "planned"
    last_error: str | None = None
    paid_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()


class PaymentReceivedRow(OrdersModel, table=True):
    __tablename__ = "payments_received"

    payment_id: UUID = Field(primary_key=True)
    order_id: UUID = Field(foreign_key="orders.id")
    school_id: UUID
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    provider: str
    received_at: datetime = _ts()


class MigrationJobRow(OrdersModel, table=True):
    __tablename__ = "migration_jobs"

    job_id: UUID = Field(primary_key=True)
    order_id: UUID = Field(foreign_key="orders.id")
    school_id: UUID
    status: str
    phase: str | None = None
    percent: int = 0
    rows_done: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    rows_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    report: dict[str, Any] | None = _json(nullable=True)
    reason: str | None = None
    updated_at: datetime = _ts()


class CommunicationLogRow(OrdersModel, table=True):
    __tablename__ = "communication_log"

    message_id: UUID = Field(primary_key=True)
    event_type: str = Field(primary_key=True)
    order_id: UUID = Field(foreign_key="orders.id")
    school_id: UUID
    channel: str
    template: str | None = None
    status: str
    detail: str | None = None
    occurred_at: datetime = _ts()


class AuditLogRow(OrdersModel, table=True):
    __tablename__ = "audit_log"
    # No RETURNING on insert: RETURNING needs read access, and most roles may only append to the log.
    __table_args__ = {"implicit_returning": False}

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = _ts()
    actor: str
    actor_role: str
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None = _json(nullable=True)
    after: dict[str, Any] | None = _json(nullable=True)
    trace_id: str | None = None
