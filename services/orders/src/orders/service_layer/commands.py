"""Commands: what a caller asks the service to do. They double as the HTTP request bodies (strict: unknown
fields are refused, so a typo never silently drops a requirement)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal, Self
from uuid import UUID

from contracts.money import Currency
from contracts.orders import AddOnCode, Contact, Language, OrderStatus, PackageCode, PaymentOption
from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from orders.domain.assessment import DataSourceEstimate, RequirementsAssessment


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(None, pattern=r"^\+[1-9]\d{7,14}$", description="E.164")
    email: EmailStr | None = None
    language: Language = "en"

    def to_contract(self) -> Contact:
        return Contact(name=self.name, phone=self.phone, email=self.email, language=self.language)


class DataSourceEstimateIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["csv", "excel", "postgres", "mysql", "access", "paper", "other"]
    approx_rows: int = Field(0, ge=0, le=1_000_000_000)


class AssessmentIn(Strict):
    """The school's needs, captured with the quote or order."""

    school_name: str = Field(min_length=1, max_length=200)
    current_system: str | None = Field(None, max_length=200)
    student_count: int = Field(gt=0, le=1_000_000)
    staff_count: int = Field(0, ge=0, le=100_000)
    data_sources: list[DataSourceEstimateIn] = Field(default_factory=list, max_length=50)
    modules: list[str] = Field(default_factory=list, max_length=50)
    preferred_go_live: date | None = None
    notes: str | None = Field(None, max_length=5_000)

    def to_domain(self) -> RequirementsAssessment:
        return RequirementsAssessment(
            school_name=self.school_name,
            student_count=self.student_count,
            staff_count=self.staff_count,
            current_system=self.current_system,
            data_sources=tuple(DataSourceEstimate(s.name, s.kind, s.approx_rows) for s in self.data_sources),
            modules=tuple(self.modules),
            preferred_go_live=self.preferred_go_live,
            notes=self.notes,
        )


class _Terms(Strict):
    add_ons: list[AddOnCode] = Field(default_factory=list, max_length=3)
    payment_option: PaymentOption
    months: int | None = Field(None, ge=3, le=12)
    currency: Currency = "USD"

    @model_validator(mode="after")
    def _consistent_terms(self) -> Self:
        if self.payment_option == "extended" and self.months is None:
            raise ValueError("extended payment needs months (3-12)")
        if self.payment_option != "extended" and self.months is not None:
            raise ValueError("months is only for the extended payment option")
        if len(set(self.add_ons)) != len(self.add_ons):
            raise ValueError("add-ons must not repeat")
        return self


class RequestQuote(_Terms):
    package_code: PackageCode | None = Field(None, description="omit to take the package recommended for the size")
    student_count: int = Field(gt=0, le=1_000_000)
    assessment: AssessmentIn | None = None
    school_id: UUID | None = Field(None, description="platform admins only: the school the quote is for")


class PlaceOrder(_Terms):
    package_code: PackageCode
    student_count: int = Field(gt=0, le=1_000_000)
    contact: ContactIn
    assessment: AssessmentIn | None = None
    notes: str | None = Field(None, max_length=5_000)
    school_id: UUID | None = Field(None, description="platform admins only: the school the order is for")


class UpdateOrder(Strict):
    """What may change after the sale; prices and terms stay as sold."""

    contact: ContactIn | None = None
    assessment: AssessmentIn | None = None
    notes: str | None = Field(None, max_length=5_000)


class ChangeStatus(Strict):
    status: OrderStatus
    reason: str | None = Field(None, max_length=1_000)
    override: bool = Field(False, description="platform admin: start work before the team/payment guard is met")

    @model_validator(mode="after")
    def _override_has_reason(self) -> Self:
        if self.override and not (self.reason and self.reason.strip()):
            raise ValueError("an override needs a reason")
        return self


class AssignTeam(Strict):
    members: list[str] = Field(min_length=1, max_length=20)
    lead: str | None = None

    @model_validator(mode="after")
    def _lead_is_member(self) -> Self:
        if any(not m.strip() or len(m) > 200 for m in self.members):
            raise ValueError("team members must be non-empty names up to 200 characters")
        if self.lead is not None and self.lead not in self.members:
            raise ValueError("the lead must be one of the members")
        return self


TaskStatus = Literal["todo", "in_progress", "blocked", "done"]


class CreateTask(Strict):
    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(None, max_length=5_000)
    assignee: str | None = Field(None, max_length=200)
    due_date: date | None = None
    status: TaskStatus = "todo"


class UpdateTask(Strict):
    title: str | None = Field(None, min_length=1, max_length=300)
    description: str | None = Field(None, max_length=5_000)
    assignee: str | None = Field(None, max_length=200)
    due_date: date | None = None
    status: TaskStatus | None = None


class CompleteMilestone(Strict):
    status: Literal["completed"]


class RegisterPostgresSource(Strict):
    kind: Literal["postgres"]
    name: str = Field(min_length=1, max_length=200)
    dsn: str = Field(pattern=r"^postgres(ql)?://", max_length=2_000, description="kept encrypted, never returned")
    entity: str | None = Field(None, max_length=100)
    estimated_rows: int | None = Field(None, ge=0, le=2**31 - 1)  # an integer column


class CarePackageIn(Strict):
    code: PackageCode
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2_000)
    price_minor: int = Field(ge=0, le=10_000_000_000)
    min_students: int = Field(ge=0, le=1_000_000)
    max_students: int | None = Field(None, ge=1, le=1_000_000)
    base_timeline_days: int = Field(gt=0, le=1_000)

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.max_students is not None and self.max_students < self.min_students:
            raise ValueError("max_students must not be below min_students")
        return self


class CarePackageUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2_000)
    price_minor: int | None = Field(None, ge=0, le=10_000_000_000)
    min_students: int | None = Field(None, ge=0, le=1_000_000)
    max_students: int | None = Field(None, ge=1, le=1_000_000)
    base_timeline_days: int | None = Field(None, gt=0, le=1_000)


class ExchangeRateIn(Strict):
    currency: Literal["ZWL"]
    rate: Decimal = Field(gt=0, max_digits=20, decimal_places=6, description="units per 1 USD")
    effective_date: date
