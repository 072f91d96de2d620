"""Care packages and add-ons as sold. Each price change is a new version: orders keep the one they bought."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from contracts.money import Money
from contracts.orders import AddOnCode, PackageCode


@dataclass(frozen=True)
class CarePackage:
    code: PackageCode
    name: str
    price: Money
    min_students: int
    max_students: int | None  # None: unlimited
    base_timeline_days: int
    version: int = 1
    description: str = ""

    def covers(self, student_count: int) -> bool:
        if student_count < self.min_students:
            return False
        return self.max_students is None or student_count <= self.max_students

    @property
    def range_text(self) -> str:
        if self.max_students is None:
            return f"{self.min_students}+ students"
        return f"{self.min_students}-{self.max_students} students"

    def revised(self, **changes: object) -> CarePackage:
        """The next version of this package; the old version stays valid for orders already sold."""
        return replace(self, version=self.version + 1, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AddOn:
    code: AddOnCode
    name: str
    price: Money
    # Fraction of the timeline that remains: rush migration halves it.
    timeline_percent: int = 100
    version: int = 1

    def revised(self, **changes: object) -> AddOn:
        return replace(self, version=self.version + 1, **changes)  # type: ignore[arg-type]


def usd(dollars: int) -> Money:
    return Money(amount_minor=dollars * 100, currency="USD")


STANDARD_PACKAGES: Final[tuple[CarePackage, ...]] = (
    CarePackage(
        code="foundation",
        name="Foundation",
        price=usd(2_800),
        min_students=50,
        max_students=200,
        base_timeline_days=28,
        description="Small schools: core student, staff and fee records.",
    ),
    CarePackage(
        code="growth",
        name="Growth",
        price=usd(6_500),
        min_students=200,
        max_students=800,
        base_timeline_days=42,
        description="Growing schools: full academic history, timetables and finance.",
    ),
    CarePackage(
        code="enterprise",
        name="Enterprise",
        price=usd(15_000),
        min_students=800,
        max_students=None,
        base_timeline_days=70,
        description="Large schools and groups: unlimited students, multiple campuses.",
    ),
)

STANDARD_ADD_ONS: Final[tuple[AddOn, ...]] = (
    AddOn(code="rush_migration", name="Rush migration", price=usd(1_000), timeline_percent=50),
    AddOn(code="onsite_training", name="On-site training", price=usd(800)),
    AddOn(code="weekend_work", name="Weekend work", price=usd(500)),
)
