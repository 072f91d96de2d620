from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from contracts.orders import Contact, MilestoneCompleted, OrderCancelled, OrderCreated, OrderStatusChanged, TeamAssigned
from orders.domain.catalogue import STANDARD_ADD_ONS, STANDARD_PACKAGES
from orders.domain.errors import DomainError, GuardFailed, MilestoneAlreadyCompleted
from orders.domain.lifecycle import Override
from orders.domain.milestones import STANDARD_MILESTONES, standard_milestones
from orders.domain.model import Order
from orders.domain.pricing import price_quote

GROWTH = next(p for p in STANDARD_PACKAGES if p.code == "growth")
RUSH = next(a for a in STANDARD_ADD_ONS if a.code == "rush_migration")


def place() -> Order:
    quote = price_quote(GROWTH, [RUSH], "split", "USD", signing_date=date(2026, 3, 2))
    return Order.place(
        school_id=uuid4(),
        package_code="growth",
        package_version=GROWTH.version,
        student_count=500,
        add_ons=["rush_migration"],
        payment_option="split",
        months=None,
        total=quote.total,
        installments=list(quote.installments),
        contact=Contact(name="Head", email="head@example.org"),
        created_by="user-1",
        timeline_days=21,
    )


def test_placing_an_order_raises_order_created_with_installments_and_contact() -> None:
    order = place()
    (event,) = order.events
    assert isinstance(event, OrderCreated)
    assert event.total.amount_minor == 750_000
    assert [i.amount.amount_minor for i in event.installments] == [375_000, 375_000]
    assert event.contact.email == "head@example.org"


def test_installments_that_do_not_add_up_are_refused() -> None:
    order = place()
    with pytest.raises(DomainError):
        Order.place(
            school_id=order.school_id,
            package_code="growth",
            package_version=1,
            student_count=500,
            add_ons=[],
            payment_option="split",
            months=None,
            total=order.total,
            installments=order.installments[:1],
            contact=order.contact,
            created_by="u",
            timeline_days=10,
        )


def test_approval_creates_the_ten_standard_milestones_and_publishes_the_change() -> None:
    order = place()
    order.change_status("approved", changed_by="admin", today=date(2026, 3, 2))
    assert [m.name for m in order.milestones] == list(STANDARD_MILESTONES)
    assert order.milestones[-1].due_date == date(2026, 3, 31)
    change = order.events[-1]
    assert isinstance(change, OrderStatusChanged)
    assert (change.from_status, change.to_status, change.changed_by) == ("pending", "approved", "admin")


def test_starting_work_needs_team_and_signing_payment() -> None:
    order = place()
    order.change_status("approved", changed_by="admin")
    with pytest.raises(GuardFailed):
        order.change_status("in_progress", changed_by="admin")
    order.assign_team(["alice", "bob", "alice"], lead="alice")
    assert order.team == ["alice", "bob"]
    assert isinstance(order.events[-1], TeamAssigned)
    order.record_installment_paid(1)
    order.change_status("in_progress", changed_by="admin")
    assert order.status == "in_progress"


def test_override_reason_travels_in_the_event() -> None:
    order = place()
    order.change_status("approved", changed_by="admin")
    order.change_status("in_progress", changed_by="admin", override=Override("signed contract, paying Friday"))
    change = order.events[-1]
    assert isinstance(change, OrderStatusChanged)
    assert change.reason == "signed contract, paying Friday"


def test_hold_and_resume_returns_to_the_previous_status() -> None:
    order = place()
    order.change_status("approved", changed_by="admin")
    order.change_status("on_hold", changed_by="admin", reason="school holidays")
    assert order.allowed_moves == {"approved", "cancelled"}
    order.change_status("approved", changed_by="admin")
    assert order.held_from is None


def test_cancelling_also_raises_order_cancelled() -> None:
    order = place()
    order.change_status("cancelled", changed_by="admin", reason="school closed")
    assert isinstance(order.events[-1], OrderCancelled)
    assert order.events[-1].reason == "school closed"


def test_completion_needs_the_go_live_installment() -> None:
    order = place()
    order.assign_team(["alice"])
    order.record_installment_paid(1)
    for status in ["approved", "in_progress", "data_migration", "system_setup", "training", "testing", "go_live"]:
        order.change_status(status, changed_by="admin")  # type: ignore[arg-type]
    with pytest.raises(GuardFailed):
        order.change_status("completed", changed_by="admin")
    order.record_installment_paid(2)
    order.change_status("completed", changed_by="admin")
    assert order.status == "completed"


def test_completing_milestones_moves_progress_and_publishes() -> None:
    order = place()
    order.change_status("approved", changed_by="admin")
    first, second = order.milestones[0], order.milestones[1]
    order.complete_milestone(first.id, at=datetime(2026, 3, 3, tzinfo=UTC))
    order.complete_milestone(second.id)
    assert order.progress_percent == 20
    event = order.events[-1]
    assert isinstance(event, MilestoneCompleted)
    assert (event.sequence, event.progress_percent) == (2, 20)
    with pytest.raises(MilestoneAlreadyCompleted):
        order.complete_milestone(first.id)


def test_milestone_on_time_compares_completion_with_due_date() -> None:
    milestone = standard_milestones(date(2026, 3, 2), 10)[0]
    assert milestone.on_time is None
    assert milestone.complete(datetime(2026, 3, 3, tzinfo=UTC)).on_time is True
    assert milestone.complete(datetime(2026, 5, 3, tzinfo=UTC)).on_time is False
