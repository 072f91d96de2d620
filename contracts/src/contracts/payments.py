"""Events the payments service publishes."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from contracts.envelope import Payload
from contracts.money import Money

Provider = Literal["stripe", "paynow", "ecocash", "onemoney"]


class PlannedInstallment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    installment_id: UUID
    sequence: int
    label: str
    amount: Money
    due: Literal["at_signing", "at_go_live", "on_date"]
    due_date: date | None = None


class PaymentPlanCreated(Payload):
    producer = "payments"
    event = "payment_plan_created"

    plan_id: UUID
    order_id: UUID
    school_id: UUID
    payment_option: Literal["full", "split", "extended"]
    total: Money
    installments: list[PlannedInstallment]


class PaymentSucceeded(Payload):
    producer = "payments"
    event = "payment_succeeded"

    payment_id: UUID
    order_id: UUID
    school_id: UUID
    installment_id: UUID
    installment_sequence: int
    amount: Money
    provider: Provider
    provider_reference: str
    plan_fully_paid: bool = False


class PaymentFailed(Payload):
    producer = "payments"
    event = "payment_failed"

    payment_id: UUID
    order_id: UUID
    school_id: UUID
    installment_id: UUID
    amount: Money
    provider: Provider
    reason: str


class PaymentRefunded(Payload):
    producer = "payments"
    event = "payment_refunded"

    payment_id: UUID
    refund_id: UUID
    order_id: UUID
    school_id: UUID
    amount: Money
    fully_refunded: bool


class InstallmentDue(Payload):
    producer = "payments"
    event = "installment_due"

    installment_id: UUID
    order_id: UUID
    school_id: UUID
    sequence: int
    amount: Money
    due_date: date


class InstallmentOverdue(Payload):
    producer = "payments"
    event = "installment_overdue"

    installment_id: UUID
    order_id: UUID
    school_id: UUID
    sequence: int
    amount: Money
    due_date: date
    days_overdue: int
