"""Request and response bodies of the orders API."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from contracts.money import Currency, Money
from contracts.orders import AddOnCode, Contact, Language, OrderStatus, PackageCode, PaymentOption
from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(None, pattern=r"^\+[1-9]\d{7,14}$", description="E.164")
    email: EmailStr | None = None
    language: Language = "en"

    def to_contract(self) -> Contact:
        return Contact(name=self.name, phone=self.phone, email=self.email, language=self.language)


class CreateOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    package_code: PackageCode
    student_count: int = Field(gt=0, le=1_000_000)
    add_ons: list[AddOnCode] = Field(default_factory=list, max_length=3)
    payment_option: PaymentOption
    months: int | None = Field(None, ge=3, le=12)
    currency: Currency = "USD"
    contact: ContactIn
    school_id: UUID | None = Field(None, description="platform admins only: the school the order is for")

    @model_validator(mode="after")
    def _months_only_for_extended(self) -> "CreateOrder":
        if self.payment_option == "extended" and self.months is None:
            raise ValueError("extended payment needs months (3-12)")
        if self.payment_option != "extended" and self.months is not None:
            raise ValueError("months is only for the extended payment option")
        if len(set(self.add_ons)) != len(self.add_ons):
            raise ValueError("add-ons must not repeat")
        return self


class OrderOut(BaseModel):
    id: UUID
    school_id: UUID
    status: OrderStatus
    package_code: PackageCode
    student_count: int
    add_ons: list[AddOnCode]
    payment_option: PaymentOption
    months: int | None
    total: Money
    created_at: datetime
    kind: Literal["order"] = "order"
