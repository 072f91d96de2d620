"""How an order's total becomes installments. Pure: no I/O, integer minor units only."""

from dataclasses import dataclass
from datetime import date
from typing import Literal

from contracts.money import percent_of, split_evenly
from contracts.orders import OrderCreated
from dateutil.relativedelta import relativedelta

from payments.domain.errors import InvalidPlan

Due = Literal["at_signing", "at_go_live", "on_date"]

HALF = 5_000  # basis points


@dataclass(frozen=True)
class InstallmentSpec:
    sequence: int
    label: str
    amount_minor: int
    due: Due
    due_date: date | None


def plan_for(order: OrderCreated, today: date) -> list[InstallmentSpec]:
    """The schedule orders sold (if it sent one) or the one computed from the payment option.

    Orders already took the full-payment discount off `total`, so `full` is one installment of `total`.
    """
    total = order.total.amount_minor
    if order.installments:
        specs = [
            InstallmentSpec(
                sequence=i.sequence,
                label=i.label,
                amount_minor=i.amount.amount_minor,
                due=i.due,
                due_date=i.due_date if i.due == "on_date" else (today if i.due == "at_signing" else None),
            )
            for i in sorted(order.installments, key=lambda i: i.sequence)
        ]
        if any(i.amount.currency != order.total.currency for i in order.installments):
            raise InvalidPlan("installment currency differs from the order's")
    elif order.payment_option == "full":
        specs = [InstallmentSpec(1, "Full payment", total, "at_signing", today)]
    elif order.payment_option == "split":
        first = percent_of(total, HALF)
        specs = [
            InstallmentSpec(1, "50% at signing", first, "at_signing", today),
            InstallmentSpec(2, "50% at go-live", total - first, "at_go_live", None),
        ]
    else:
        months = order.months
        if months is None or not 3 <= months <= 12:
            raise InvalidPlan(f"extended payment needs 3-12 months, got {months}")
        specs = [
            InstallmentSpec(i + 1, f"Month {i + 1} of {months}", amount, "on_date", today + relativedelta(months=i))
            for i, amount in enumerate(split_evenly(total, months))
        ]
    check_plan(specs, total)
    return specs


def check_plan(specs: list[InstallmentSpec], total_minor: int) -> None:
    if not specs:
        raise InvalidPlan("a plan needs at least one installment")
    if sum(s.amount_minor for s in specs) != total_minor:
        raise InvalidPlan(f"installments add up to {sum(s.amount_minor for s in specs)}, not the total {total_minor}")
    if len({s.sequence for s in specs}) != len(specs):
        raise InvalidPlan("installment sequences repeat")
    if any(s.amount_minor <= 0 for s in specs):
        raise InvalidPlan("every installment must be positive")
    if any(s.due == "on_date" and s.due_date is None for s in specs):
        raise InvalidPlan("an installment due on a date needs its date")
