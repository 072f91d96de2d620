"""The plan model: shipped plans are valid; bad plans are refused with the place of every problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from migration_worker.domain.dates import DateFormatError, compile_format
from migration_worker.domain.plan import PlanError, load_plan, parse_plan
from migration_worker.plans import SHIPPED

GOOD = """
name: tiny
source: {kind: csv}
entities:
  - name: people
    source: {file: people.csv}
    target_table: people
    legacy_key: {from: id, transforms: [trim]}
    fields:
      email: {from: email, transforms: [trim, lower]}
  - name: notes
    source: {file: notes.csv}
    target_table: notes
    legacy_key: {from: id}
    fields:
      person_id: {reference: people, from: person}
"""


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_plans_are_valid(name: str) -> None:
    plan = load_plan(SHIPPED[name].plan_file)
    assert plan.name == name
    assert plan.entities


def test_terse_transform_spellings_are_normalised() -> None:
    plan = parse_plan(GOOD)
    email = plan.entity("people").fields["email"]
    assert [t.kind for t in email.transforms] == ["trim", "lower"]


def _problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as err:
        parse_plan(text, origin="plan.yaml")
    return err.value.problems


def test_reference_to_a_later_entity_is_refused() -> None:
    swapped = GOOD.replace("reference: people", "reference: notes")
    (problem,) = _problems(swapped)
    assert "references 'notes'" in problem
    assert "dependency order" in problem


def test_unknown_transform_names_its_place() -> None:
    problems = _problems(GOOD.replace("[trim, lower]", "[trim, shout]"))
    assert any("entities[people].fields.email.transforms[1]" in p for p in problems)


def test_field_without_origin_is_refused() -> None:
    problems = _problems(GOOD.replace("email: {from: email, transforms: [trim, lower]}", "email: {type: text}"))
    assert any("needs `from`, `expr`, `value`" in p for p in problems)


def test_typed_transform_must_be_last() -> None:
    text = GOOD.replace("[trim, lower]", "[{parse_date: '%Y-%m-%d'}, trim]")
    assert any("must come last" in p for p in _problems(text))


def test_validation_on_unknown_field_is_refused() -> None:
    text = GOOD.replace(
        "      email: {from: email, transforms: [trim, lower]}\n",
        "      email: {from: email, transforms: [trim, lower]}\n    validations: [{rule: required, field: phone}]\n",
    )
    assert any("unknown field 'phone'" in p for p in _problems(text))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{rule: reference, field: legacy_key}", "'legacy_key' has no `reference`"),
        ("{rule: range, field: email, min: 1}", "a range needs a number"),
        ("{rule: range, field: legacy_key, max: 9}", "'legacy_key' is text"),
    ],
)
def test_a_rule_the_field_cannot_take_is_refused(rule: str, expected: str) -> None:
    text = GOOD.replace(
        "      email: {from: email, transforms: [trim, lower]}\n",
        f"      email: {{from: email, transforms: [trim, lower]}}\n    validations: [{rule}]\n",
    )
    assert any(expected in p for p in _problems(text))


def test_a_range_on_a_number_is_accepted() -> None:
    text = GOOD.replace(
        "      email: {from: email, transforms: [trim, lower]}\n",
        "      email: {from: email, transforms: [trim, lower]}\n      age: {from: age, type: integer}\n"
        "    validations: [{rule: range, field: age, min: 3, max: 120}]\n",
    )
    assert parse_plan(text).entity("people").validations[0].rule == "range"


def test_an_unknown_source_time_zone_is_refused() -> None:
    text = GOOD.replace("source: {kind: csv}\n", "source: {kind: csv}\noptions: {source_timezone: Mars/Olympus}\n", 1)
    assert any("unknown time zone 'Mars/Olympus'" in p for p in _problems(text))
    harare = text.replace("Mars/Olympus", "Africa/Harare")
    assert parse_plan(harare).options.source_timezone == "Africa/Harare"


def test_not_yaml_and_not_a_mapping() -> None:
    assert "not valid YAML" in _problems("name: [unclosed")[0]
    assert "YAML mapping" in _problems("- just\n- a list\n")[0]


def test_unreadable_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read the plan file"):
        load_plan(tmp_path / "missing.yaml")


def test_date_formats_compile_to_positions_and_shapes() -> None:
    f = compile_format("%d/%m/%Y %H:%M")
    assert f.shape == "99/99/9999 99:99"
    assert f.positions["year"] == (7, 4)
    with pytest.raises(DateFormatError):
        compile_format("%Y-%b-%d")
    with pytest.raises(DateFormatError):
        compile_format("%m/%Y")
