"""The order lifecycle: which status moves exist, and what each one needs first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from contracts.orders import OrderStatus

from orders.domain.errors import GuardFailed, IllegalTransition, OverrideNeedsReason

DELIVERY_PATH: Final[tuple[OrderStatus, ...]] = (
    "pending",
    "approved",
    "in_progress",
    "data_migration",
    "system_setup",
    "training",
    "testing",
    "go_live",
    "completed",
)
TERMINAL: Final[frozenset[OrderStatus]] = frozenset({"completed", "cancelled"})
ACTIVE: Final[frozenset[OrderStatus]] = frozenset(DELIVERY_PATH[1:-1]) | {"on_hold"}


def allowed_moves(status: OrderStatus, held_from: OrderStatus | None = None) -> frozenset[OrderStatus]:
    """Forward one step along the delivery path, hold, or cancel; a held order resumes where it was."""
    if status in TERMINAL:
        return frozenset()
    if status == "on_hold":
        resume: set[OrderStatus] = {held_from} if held_from is not None else set()
        # a live order paused stays uncancellable, as it was before the pause
        return frozenset(resume if held_from == "go_live" else resume | {"cancelled"})
    position = DELIVERY_PATH.index(status)
    moves: set[OrderStatus] = {DELIVERY_PATH[position + 1], "on_hold", "cancelled"}
    if status == "go_live":
        moves.discard("cancelled")  # once live, the school keeps its system; it can only complete or pause
    return frozenset(moves)


@dataclass(frozen=True)
class GuardFacts:
    """What the guards look at, gathered from the order and its read models."""

    has_team: bool
    signing_paid: bool
    all_installments_paid: bool


@dataclass(frozen=True)
class Override:
    """A platform admin waiving a guard; the reason is kept in the audit log and the event."""

    reason: str

    def __post_init__(self) -> None:
        if not self.reason or not self.reason.strip():
            raise OverrideNeedsReason()


def check_transition(
    current: OrderStatus,
    target: OrderStatus,
    facts: GuardFacts,
    *,
    held_from: OrderStatus | None = None,
    override: Override | None = None,
) -> None:
    """Raise unless `current → target` is allowed now."""
    allowed = allowed_moves(current, held_from)
    if target not in allowed:
        raise IllegalTransition(current, target, allowed)
    unmet: list[str] = []
    # Starting the work needs a team and the signing payment; resuming it after a hold does not ask again.
    if target == "in_progress" and current != "on_hold" and override is None:
        if not facts.has_team:
            unmet.append("no delivery team is assigned")
        if not facts.signing_paid:
            unmet.append("the signing payment has not been received (or give an admin override with a reason)")
    if target == "completed" and not facts.all_installments_paid:
        # Money owed is never waived by an override: completing means the plan is settled.
        unmet.append("not every installment is paid")
    if unmet:
        raise GuardFailed(current, target, unmet)
