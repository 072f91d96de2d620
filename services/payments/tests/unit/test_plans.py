from datetime import date
from uuid import uuid4

import pytest
from contracts.money import Money
from contracts.orders import Contact, OrderCreated, ScheduledInstallment
from hypothesis import given
from hypothesis import strategies as st
from payments.domain.errors import InvalidPlan
from payments.domain.plans import plan_for

TODAY = date(2025, 1, 31)


def order(option: str, total: int, months: int | None = None, **extra: object) -> OrderCreated:
    return OrderCreated(
        order_id=uuid4(),
        school_id=uuid4(),
        package_code="growth",
        student_count=10,
        payment_option=option,  # type: ignore[arg-type]
        months=months,
        total=Money(amount_minor=total, currency="USD"),
        contact=Contact(name="x"),
        **extra,  # type: ignore[arg-type]
    )


@given(total=st.integers(min_value=12, max_value=10**10), months=st.integers(min_value=3, max_value=12))
def test_extended_installments_add_up_exactly(total: int, months: int) -> None:
    specs = plan_for(order("extended", total, months), TODAY)
    assert sum(s.amount_minor for s in specs) == total
    assert len(specs) == months


def test_extended_due_dates_are_month_ends_when_signing_at_month_end() -> None:
    specs = plan_for(order("extended", 300, 3), TODAY)
    assert [s.due_date for s in specs] == [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)]


@given(total=st.integers(min_value=2, max_value=10**10))
def test_split_is_two_halves_adding_up(total: int) -> None:
    first, second = plan_for(order("split", total), TODAY)
    assert first.amount_minor + second.amount_minor == total
    assert abs(first.amount_minor - second.amount_minor) <= 1
    assert (first.due, second.due) == ("at_signing", "at_go_live")


def test_full_is_the_discounted_total_as_sent() -> None:
    [only] = plan_for(order("full", 712_500), TODAY)
    assert only.amount_minor == 712_500


def test_schedule_sent_by_orders_wins_but_must_add_up() -> None:
    sold = [
        ScheduledInstallment(sequence=1, label="a", amount=Money(amount_minor=100, currency="USD"), due="at_signing"),
        ScheduledInstallment(sequence=2, label="b", amount=Money(amount_minor=50, currency="USD"), due="at_go_live"),
    ]
    specs = plan_for(order("split", 150, installments=sold), TODAY)
    assert [s.amount_minor for s in specs] == [100, 50]
    with pytest.raises(InvalidPlan):
        plan_for(order("split", 151, installments=sold), TODAY)
