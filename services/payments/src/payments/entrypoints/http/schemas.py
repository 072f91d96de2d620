"""Request and response bodies of the payments API."""

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from contracts.money import Money
from pydantic import BaseModel, ConfigDict, Field


class InstallmentOut(BaseModel):
    id: UUID
    sequence: int
    label: str
    amount: Money
    paid: Money
    due: Literal["at_signing", "at_go_live", "on_date"]
    due_date: date | None
    status: Literal["open", "paid", "cancelled"]


class PlanOut(BaseModel):
    id: UUID
    order_id: UUID
    school_id: UUID
    payment_option: Literal["full", "split", "extended"]
    status: Literal["active", "paid", "cancelled"]
    total: Money
    paid: Money
    installments: list[InstallmentOut]
    created_at: datetime


class RefundOut(BaseModel):
    id: UUID
    payment_id: UUID
    amount: Money
    status: Literal["pending", "succeeded", "failed"]
    reason: str | None
    provider_reference: str | None
    created_at: datetime


class PaymentOut(BaseModel):
    id: UUID
    installment_id: UUID
    order_id: UUID
    school_id: UUID
    provider: Literal["stripe", "paynow", "ecocash", "onemoney"]
    method: str
    amount: Money
    refunded: Money
    status: str
    provider_reference: str | None
    failure_reason: str | None
    checkout: dict[str, object]
    refunds: list[RefundOut] = []
    created_at: datetime
    updated_at: datetime


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["stripe", "paynow", "ecocash", "onemoney"]
    method: Literal["card", "web", "ecocash", "onemoney"] | None = Field(
        None, description="paynow only: web checkout (default) or mobile express through ecocash / onemoney"
    )
    phone: str | None = Field(
        None, pattern=r"^(\+?2637\d{8}|07\d{8})$", description="mobile money: the payer's number (07..., 2637...)"
    )
    payment_method: str | None = Field(
        None, max_length=100, description="stripe only: a PaymentMethod id to confirm at once (e.g. pm_card_visa)"
    )


class CheckoutOut(BaseModel):
    payment_id: UUID
    provider: str
    status: str
    amount: Money
    redirect_url: str | None = None
    client_secret: str | None = None
    instructions: str | None = None
    provider_reference: str | None = None


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_minor: int | None = Field(None, gt=0, description="omit for the whole refundable amount")
    reason: str | None = Field(None, max_length=500)


class WebhookAccepted(BaseModel):
    received: int
    status: str
