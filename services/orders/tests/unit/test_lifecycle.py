from itertools import pairwise

import pytest
from orders.domain.errors import GuardFailed, IllegalTransition, OverrideNeedsReason
from orders.domain.lifecycle import DELIVERY_PATH, GuardFacts, Override, allowed_moves, check_transition

ALL_GOOD = GuardFacts(has_team=True, signing_paid=True, all_installments_paid=True)


def test_the_delivery_path_is_walkable_step_by_step() -> None:
    for current, target in pairwise(DELIVERY_PATH):
        check_transition(current, target, ALL_GOOD)


def test_skipping_a_step_is_refused_and_lists_the_allowed_moves() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition("pending", "in_progress", ALL_GOOD)
    assert caught.value.allowed == ["approved", "cancelled", "on_hold"]
    assert "allowed moves: approved, cancelled, on_hold" in caught.value.message


@pytest.mark.parametrize("closed", ["completed", "cancelled"])
def test_closed_orders_allow_no_moves(closed: str) -> None:
    with pytest.raises(IllegalTransition, match="none"):
        check_transition(closed, "pending", ALL_GOOD)  # type: ignore[arg-type]


def test_a_held_order_resumes_only_where_it_was_or_is_cancelled() -> None:
    assert allowed_moves("on_hold", "training") == {"training", "cancelled"}
    check_transition("on_hold", "training", ALL_GOOD, held_from="training")
    with pytest.raises(IllegalTransition):
        check_transition("on_hold", "testing", ALL_GOOD, held_from="training")


def test_a_live_order_cannot_be_cancelled() -> None:
    assert "cancelled" not in allowed_moves("go_live")


def test_a_live_order_cannot_be_cancelled_by_pausing_it_first() -> None:
    check_transition("go_live", "on_hold", ALL_GOOD)
    assert allowed_moves("on_hold", "go_live") == {"go_live"}
    with pytest.raises(IllegalTransition):
        check_transition("on_hold", "cancelled", ALL_GOOD, held_from="go_live")


def test_resuming_the_work_after_a_hold_does_not_ask_for_the_start_guard_again() -> None:
    started_on_override = GuardFacts(has_team=False, signing_paid=False, all_installments_paid=False)
    check_transition("on_hold", "in_progress", started_on_override, held_from="in_progress")
    with pytest.raises(GuardFailed):
        check_transition("approved", "in_progress", started_on_override)


def test_in_progress_needs_a_team_and_the_signing_payment() -> None:
    facts = GuardFacts(has_team=False, signing_paid=False, all_installments_paid=False)
    with pytest.raises(GuardFailed) as caught:
        check_transition("approved", "in_progress", facts)
    assert len(caught.value.unmet) == 2
    assert "team" in caught.value.unmet[0]
    assert "signing payment" in caught.value.unmet[1]


def test_an_admin_override_with_a_reason_waives_the_in_progress_guard() -> None:
    facts = GuardFacts(has_team=False, signing_paid=False, all_installments_paid=False)
    check_transition("approved", "in_progress", facts, override=Override(reason="paid in cash at the office"))


def test_an_override_without_a_reason_is_refused() -> None:
    with pytest.raises(OverrideNeedsReason):
        Override(reason="  ")


def test_completion_needs_every_installment_paid_even_with_an_override() -> None:
    facts = GuardFacts(has_team=True, signing_paid=True, all_installments_paid=False)
    with pytest.raises(GuardFailed, match="installment"):
        check_transition("go_live", "completed", facts, override=Override(reason="please"))
