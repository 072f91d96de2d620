"""Events the orders service publishes."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import Payload
from contracts.money import Money

PackageCode = Literal["foundation", "growth", "enterprise"]
AddOnCode = Literal["rush_migration", "onsite_training", "weekend_work"]
PaymentOption = Literal["full", "split", "extended"]
Language = Literal["en", "sn", "nd"]
OrderStatus = Literal[
    "pending",
    "approved",
    "in_progress",
    "data_migration",
    "system_setup",
    "training",
    "testing",
    "go_live",
    "completed",
    "on_hold",
    "cancelled",
]


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    phone: str | None = None
    email: str | None = None
    language: Language = "en"


class ScheduledInstallment(BaseModel):
    """One installment as sold: payments turns these into payable installments."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sequence: int = Field(ge=1)
    label: str
    amount: Money
    due: Literal["at_signing", "at_go_live", "on_date"]
    due_date: date | None = None


class OrderCreated(Payload):
    producer = "orders"
    event = "order_created"

    order_id: UUID
    school_id: UUID
    package_code: PackageCode
    student_count: int
    add_ons: list[AddOnCode] = []
    payment_option: PaymentOption
    months: int | None = None
    total: Money
    installments: list[ScheduledInstallment] = []
    contact: Contact


class OrderStatusChanged(Payload):
    producer = "orders"
    event = "order_status_changed"

    order_id: UUID
    school_id: UUID
    from_status: OrderStatus
    to_status: OrderStatus
    reason: str | None = None
    changed_by: str | None = None
    contact: Contact | None = None


class OrderCancelled(Payload):
    producer = "orders"
    event = "order_cancelled"

    order_id: UUID
    school_id: UUID
    reason: str | None = None
    contact: Contact | None = None


class MilestoneCompleted(Payload):
    producer = "orders"
    event = "milestone_completed"

    order_id: UUID
    school_id: UUID
    milestone_id: UUID
    name: str
    sequence: int
    progress_percent: int = Field(ge=0, le=100)
    contact: Contact | None = None


class TeamAssigned(Payload):
    producer = "orders"
    event = "team_assigned"

    order_id: UUID
    school_id: UUID
    members: list[str]
    lead: str | None = None
    contact: Contact | None = None
