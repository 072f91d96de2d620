"""The ten standard milestones every project goes through, and the progress they add up to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Final, Literal
from uuid import UUID, uuid4

from orders.domain.assessment import add_working_days
from orders.domain.errors import MilestoneAlreadyCompleted

STANDARD_MILESTONES: Final[tuple[str, ...]] = (
    "Project Kickoff",
    "Data Collection",
    "Data Analysis",
    "System Configuration",
    "Data Migration",
    "User Setup",
    "Training Delivery",
    "System Testing",
    "Go Live",
    "Project Closure",
)
DATA_MIGRATION_MILESTONE: Final = STANDARD_MILESTONES.index("Data Migration") + 1
GO_LIVE_MILESTONE: Final = STANDARD_MILESTONES.index("Go Live") + 1

MilestoneStatus = Literal["pending", "completed"]


@dataclass(frozen=True)
class Milestone:
    id: UUID
    sequence: int
    name: str
    due_date: date | None
    status: MilestoneStatus = "pending"
    completed_at: datetime | None = None

    def complete(self, at: datetime) -> Milestone:
        if self.status == "completed":
            raise MilestoneAlreadyCompleted(f"milestone {self.name!r} is already completed")
        return replace(self, status="completed", completed_at=at)

    @property
    def on_time(self) -> bool | None:
        if self.completed_at is None or self.due_date is None:
            return None
        return self.completed_at.date() <= self.due_date


def standard_milestones(start: date, working_days: int) -> list[Milestone]:
    """The ten milestones with due dates spread evenly over the estimated timeline."""
    count = len(STANDARD_MILESTONES)
    return [
        Milestone(
            id=uuid4(),
            sequence=i + 1,
            name=name,
            due_date=add_working_days(start, (working_days * (i + 1) + count - 1) // count),
        )
        for i, name in enumerate(STANDARD_MILESTONES)
    ]


def progress_percent(milestones: Sequence[Milestone]) -> int:
    """Share of completed milestones, rounded down so 100 % means every one is done."""
    if not milestones:
        return 0
    done = sum(1 for m in milestones if m.status == "completed")
    return done * 100 // len(milestones)
