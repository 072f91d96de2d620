"""Response bodies of the orders API, and the problem document every error uses."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from contracts.money import Currency, Money
from contracts.orders import AddOnCode, OrderStatus, PackageCode, PaymentOption
from pydantic import BaseModel, ConfigDict, Field


class ProblemDetails(BaseModel):
    """RFC 9457 problem details (`application/problem+json`); extension members vary by error."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed JSON",
        401: "Missing or invalid bearer token",
        403: "The role may not do this",
        404: "Not found (or another tenant's)",
        409: "Conflicts with the current state",
        413: "Body too large",
        422: "Invalid input or refused by the business rules",
        415: "Unsupported media type",
        429: "Rate limited (see Retry-After)",
    }
    return {
        s: {
            "model": ProblemDetails,
            "description": descriptions[s],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for s in (*statuses, 401, 429)
    }


class CarePackageOut(BaseModel):
    code: PackageCode
    version: int
    name: str
    description: str
    price: Money
    min_students: int
    max_students: int | None
    base_timeline_days: int


class AddOnOut(BaseModel):
    code: AddOnCode
    version: int
    name: str
    price: Money
    timeline_percent: int


class CatalogueOut(BaseModel):
    packages: list[CarePackageOut]
    add_ons: list[AddOnOut]


class ExchangeRateOut(BaseModel):
    currency: Currency
    rate: str
    effective_date: date


class QuoteLineOut(BaseModel):
    kind: Literal["base", "add_on", "discount"]
    code: str
    label: str
    amount: Money
    version: int | None


class InstallmentOut(BaseModel):
    sequence: int
    label: str
    amount: Money
    due: Literal["at_signing", "at_go_live", "on_date"]
    due_date: date | None


class TimelineOut(BaseModel):
    working_days: int
    estimated_go_live: date
    rush: bool
    meets_preferred_go_live: bool | None
    notes: list[str]


class QuoteOut(BaseModel):
    id: UUID
    school_id: UUID | None
    package: dict[str, Any]
    recommended_package: PackageCode
    student_count: int
    add_ons: list[AddOnCode]
    payment_option: PaymentOption
    months: int | None
    currency: Currency
    exchange_rate: ExchangeRateOut | None
    lines: list[QuoteLineOut]
    subtotal: Money
    discount: Money
    total: Money
    installments: list[InstallmentOut]
    timeline: TimelineOut
    assessment: dict[str, Any] | None
    created_at: datetime


class OrderSummary(BaseModel):
    id: UUID
    school_id: UUID
    status: OrderStatus
    package_code: PackageCode
    package_version: int
    student_count: int
    add_ons: list[AddOnCode]
    payment_option: PaymentOption
    months: int | None
    total: Money
    created_at: datetime
    updated_at: datetime
    kind: Literal["order"] = "order"


class OrderPage(BaseModel):
    items: list[OrderSummary]
    total: int
    limit: int
    offset: int


class MilestoneOut(BaseModel):
    id: UUID
    sequence: int
    name: str
    due_date: date | None
    status: Literal["pending", "completed"]
    completed_at: datetime | None
    completed_by: str | None = None


class PaymentStatusOut(BaseModel):
    sequence: int
    installment_id: UUID | None
    amount_minor: int
    currency: Currency
    status: str
    paid_at: datetime | None


class MigrationJobOut(BaseModel):
    job_id: UUID
    status: str
    phase: str | None
    percent: int
    rows_done: int
    rows_total: int
    report: dict[str, Any] | None
    reason: str | None


class CommunicationOut(BaseModel):
    message_id: UUID
    event_type: str
    channel: str
    template: str | None
    status: str
    occurred_at: datetime


class OrderOut(OrderSummary):
    lines: list[QuoteLineOut]
    installments: list[InstallmentOut]
    exchange_rate: ExchangeRateOut | None
    contact: dict[str, Any]
    assessment: dict[str, Any] | None
    notes: str | None
    team: list[str]
    team_lead: str | None
    held_from: OrderStatus | None
    allowed_moves: list[OrderStatus]
    progress_percent: int
    milestones: list[MilestoneOut]
    payments: list[PaymentStatusOut]
    migration_job: MigrationJobOut | None
    communications: list[CommunicationOut]


class TaskOut(BaseModel):
    id: UUID
    order_id: UUID
    title: str
    description: str | None
    assignee: str | None
    due_date: date | None
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class DataSourceOut(BaseModel):
    """A registered source; a PostgreSQL connection string is never returned."""

    id: UUID
    order_id: UUID
    kind: Literal["csv", "postgres"]
    name: str
    entity: str | None
    estimated_rows: int | None
    location: str
    size_bytes: int | None
    created_at: datetime


class MoneyAmount(BaseModel):
    amount_minor: int
    currency: Currency


class UtilisationOut(BaseModel):
    member: str
    active_orders: int
    capacity: int
    utilisation_percent: int


class DashboardOut(BaseModel):
    active_projects: int
    revenue_this_month: list[MoneyAmount]
    average_order_value: list[MoneyAmount]
    team_utilisation: list[UtilisationOut]
    success_rate: float | None
    orders_by_status: dict[str, int]
    overdue_tasks: int


class AnalyticsGroup(BaseModel):
    key: str
    orders: int
    quotes: int
    conversion: float | None
    order_value: list[MoneyAmount]
    revenue: list[MoneyAmount]


class AnalyticsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    group_by: Literal["month", "package"]
    groups: list[AnalyticsGroup]


class TeamPerformanceOut(BaseModel):
    member: str
    active_orders: int
    completed_orders: int
    on_time_milestone_rate: float | None
    average_project_days: float | None


class AuditEntryOut(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    actor_role: str
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    trace_id: str | None
