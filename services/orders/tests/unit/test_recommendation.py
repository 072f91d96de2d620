from datetime import date

import pytest
from orders.domain.assessment import DataSourceEstimate, RequirementsAssessment, assess, estimate_timeline
from orders.domain.catalogue import STANDARD_ADD_ONS, STANDARD_PACKAGES
from orders.domain.errors import NoPackageFits, StudentCountOutOfRange
from orders.domain.recommendation import ensure_package_fits, recommend_package

PACKAGES = {p.code: p for p in STANDARD_PACKAGES}
RUSH = next(a for a in STANDARD_ADD_ONS if a.code == "rush_migration")
MONDAY = date(2026, 3, 2)


@pytest.mark.parametrize(
    ("students", "expected"),
    [
        (50, "foundation"),
        (200, "foundation"),
        (201, "growth"),
        (800, "growth"),
        (801, "enterprise"),
        (50_000, "enterprise"),
    ],
)
def test_the_smallest_package_that_covers_the_school_is_recommended(students: int, expected: str) -> None:
    assert recommend_package(students, STANDARD_PACKAGES).code == expected


def test_a_school_below_every_package_gets_a_clear_error() -> None:
    with pytest.raises(NoPackageFits, match="starts at 50"):
        recommend_package(49, STANDARD_PACKAGES)


def test_a_package_outside_the_count_names_the_one_that_fits() -> None:
    with pytest.raises(StudentCountOutOfRange) as caught:
        ensure_package_fits(PACKAGES["foundation"], 450, STANDARD_PACKAGES)
    assert caught.value.fitting_package == "growth"
    assert "growth package fits 450 students" in caught.value.message
    assert "50-200" in caught.value.message


def test_a_package_that_covers_the_count_passes() -> None:
    ensure_package_fits(PACKAGES["enterprise"], 5_000, STANDARD_PACKAGES)


def test_too_small_a_school_for_enterprise_names_no_package_when_none_fits() -> None:
    with pytest.raises(StudentCountOutOfRange) as caught:
        ensure_package_fits(PACKAGES["enterprise"], 10, STANDARD_PACKAGES)
    assert caught.value.fitting_package is None


def assessment(**overrides: object) -> RequirementsAssessment:
    values: dict[str, object] = {
        "school_name": "Mbare High",
        "student_count": 650,
        "staff_count": 40,
        "current_system": "Excel",
        "data_sources": (DataSourceEstimate("students.xlsx", "excel", 120_000),),
        "modules": ("students", "fees", "exams", "timetable", "library", "hostel"),
        "preferred_go_live": date(2026, 4, 30),
    }
    values.update(overrides)
    return RequirementsAssessment(**values)  # type: ignore[arg-type]


def test_assessment_recommends_by_size_and_adds_volume_and_module_time() -> None:
    result = assess(assessment(), STANDARD_PACKAGES, [], MONDAY)
    assert result.package.code == "growth"
    # 42 base + 2 for 120k rows + 4 for two modules beyond the first four
    assert result.timeline.working_days == 48
    assert result.timeline.rush is False
    assert result.timeline.estimated_go_live == date(2026, 5, 7)
    assert result.timeline.meets_preferred_go_live is False
    assert any("rush migration may help" in note for note in result.timeline.notes)


def test_rush_migration_makes_the_timeline_half_as_long() -> None:
    normal = estimate_timeline(assessment(), PACKAGES["growth"], [], MONDAY)
    rushed = estimate_timeline(assessment(), PACKAGES["growth"], [RUSH], MONDAY)
    assert rushed.working_days == 24 == normal.working_days // 2
    assert rushed.rush is True
    assert rushed.meets_preferred_go_live is True


def test_no_preferred_date_means_no_verdict() -> None:
    timeline = estimate_timeline(assessment(preferred_go_live=None), PACKAGES["growth"], [], MONDAY)
    assert timeline.meets_preferred_go_live is None
