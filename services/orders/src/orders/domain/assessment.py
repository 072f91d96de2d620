"""Requirements assessment: what the school needs, which package fits and how long the project takes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from orders.domain.catalogue import AddOn, CarePackage
from orders.domain.recommendation import recommend_package

DataSourceKind = Literal["csv", "excel", "postgres", "mysql", "access", "paper", "other"]

# Rows a team migrates and reconciles per working day before volume starts to add time.
ROWS_PER_EXTRA_DAY = 50_000
INCLUDED_MODULES = 4
DAYS_PER_EXTRA_MODULE = 2


@dataclass(frozen=True)
class DataSourceEstimate:
    name: str
    kind: DataSourceKind
    approx_rows: int = 0


@dataclass(frozen=True)
class RequirementsAssessment:
    school_name: str
    student_count: int
    staff_count: int = 0
    current_system: str | None = None
    data_sources: tuple[DataSourceEstimate, ...] = ()
    modules: tuple[str, ...] = ()
    preferred_go_live: date | None = None
    notes: str | None = None

    @property
    def total_rows(self) -> int:
        return sum(s.approx_rows for s in self.data_sources)


@dataclass(frozen=True)
class TimelineEstimate:
    working_days: int
    estimated_go_live: date
    rush: bool
    meets_preferred_go_live: bool | None  # None: the school named no date
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Recommendation:
    package: CarePackage
    timeline: TimelineEstimate


def add_working_days(start: date, days: int) -> date:
    current, remaining = start, days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


def estimate_timeline(
    assessment: RequirementsAssessment, package: CarePackage, add_ons: Sequence[AddOn], start: date
) -> TimelineEstimate:
    """Package base time, plus data volume and extra modules; rush migration cuts the total by half."""
    days = package.base_timeline_days
    notes: list[str] = []
    volume_days = assessment.total_rows // ROWS_PER_EXTRA_DAY
    if volume_days:
        notes.append(f"+{volume_days} days for about {assessment.total_rows:,} rows of data")
    module_days = max(0, len(assessment.modules) - INCLUDED_MODULES) * DAYS_PER_EXTRA_MODULE
    if module_days:
        notes.append(f"+{module_days} days for modules beyond the first {INCLUDED_MODULES}")
    days += volume_days + module_days
    percent = min((a.timeline_percent for a in add_ons), default=100)
    rush = percent < 100
    if rush:
        days = math.ceil(days * percent / 100)
        notes.append(f"rush migration: {100 - percent}% shorter")
    go_live = add_working_days(start, days)
    meets = None if assessment.preferred_go_live is None else go_live <= assessment.preferred_go_live
    if meets is False and not rush:
        notes.append("the preferred go-live date is earlier than the estimate; rush migration may help")
    return TimelineEstimate(
        working_days=days, estimated_go_live=go_live, rush=rush, meets_preferred_go_live=meets, notes=tuple(notes)
    )


def assess(
    assessment: RequirementsAssessment,
    packages: Sequence[CarePackage],
    add_ons: Sequence[AddOn],
    start: date,
) -> Recommendation:
    package = recommend_package(assessment.student_count, packages)
    return Recommendation(package=package, timeline=estimate_timeline(assessment, package, add_ons, start))
