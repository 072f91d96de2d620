"""The orders database. Own SQLModel registry: this service's tables only, never another's."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class OrdersModel(SQLModel, registry=registry()):
    pass


metadata = OrdersModel.metadata


def _now() -> datetime:
    return datetime.now(UTC)


class OrderRow(OrdersModel, table=True):
    __tablename__ = "orders"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    school_id: UUID = Field(index=True)
    status: str = Field(default="pending", index=True)
    package_code: str
    student_count: int
    add_ons: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    payment_option: str
    months: int | None = None
    currency: str
    total_minor: int
    contact: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_by: str
    created_at: datetime = Field(default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False))
