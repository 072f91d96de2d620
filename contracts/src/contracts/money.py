"""Money in integer minor units; never a float."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Currency = Literal["USD", "ZWL"]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount_minor: int = Field(ge=0)
    currency: Currency

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount_minor=self.amount_minor + other.amount_minor, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount_minor=self.amount_minor - other.amount_minor, currency=self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")


def split_evenly(total_minor: int, parts: int) -> list[int]:
    """Split an amount into `parts` integers that add up exactly; the remainder goes to the first parts."""
    if parts < 1:
        raise ValueError("parts must be at least 1")
    if total_minor < 0:
        raise ValueError("amount must not be negative")
    base, remainder = divmod(total_minor, parts)
    return [base + (1 if i < remainder else 0) for i in range(parts)]


def percent_of(amount_minor: int, basis_points: int) -> int:
    """`basis_points`/10000 of an amount, rounded half up, in integer arithmetic."""
    return (amount_minor * basis_points + 5000) // 10000
