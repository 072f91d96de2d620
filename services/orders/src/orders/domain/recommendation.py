"""Which care package fits a school of a given size."""

from __future__ import annotations

from collections.abc import Sequence

from orders.domain.catalogue import CarePackage
from orders.domain.errors import NoPackageFits, StudentCountOutOfRange


def recommend_package(student_count: int, packages: Sequence[CarePackage]) -> CarePackage:
    """The cheapest package that covers the school; at a shared boundary the smaller one wins."""
    fitting = [p for p in packages if p.covers(student_count)]
    if not fitting:
        raise NoPackageFits(student_count, min((p.min_students for p in packages), default=0))
    return min(fitting, key=lambda p: p.price.amount_minor)


def ensure_package_fits(package: CarePackage, student_count: int, packages: Sequence[CarePackage]) -> None:
    """Refuse a package chosen for the wrong school size, naming the one that fits."""
    if package.covers(student_count):
        return
    fitting = [p for p in packages if p.covers(student_count)]
    fitting_code = min(fitting, key=lambda p: p.price.amount_minor).code if fitting else None
    raise StudentCountOutOfRange(package.code, student_count, package.range_text, fitting_code)
