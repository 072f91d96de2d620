"""A change to a message that is not additive must fail here: make a new vN instead."""

import json
from pathlib import Path

import pytest
from contracts.routing import ALL_MESSAGES
from contracts.schemas import all_schemas, breaking_changes

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("routing_key", sorted(all_schemas()))
def test_message_schema_is_compatible_with_snapshot(routing_key: str) -> None:
    snapshot = SNAPSHOTS / f"{routing_key}.json"
    assert snapshot.exists(), f"no snapshot for {routing_key}: run `make docs` to record it"
    old = json.loads(snapshot.read_text())
    assert breaking_changes(old, all_schemas()[routing_key]) == []


def test_every_snapshot_has_a_message() -> None:
    """A message type may not silently vanish from the contracts."""
    recorded = {p.name.removesuffix(".json") for p in SNAPSHOTS.glob("*.json")}
    assert recorded <= {m.routing_key() for m in ALL_MESSAGES}


def test_removing_a_property_is_detected() -> None:
    schema = all_schemas()["orders.order_created.v1"]
    mutated = json.loads(json.dumps(schema))
    del mutated["$defs"]["OrderCreated"]["properties"]["student_count"]
    assert any("student_count" in p for p in breaking_changes(schema, mutated))


def test_new_required_property_is_detected() -> None:
    schema = all_schemas()["payments.payment_succeeded.v1"]
    mutated = json.loads(json.dumps(schema))
    mutated["$defs"]["PaymentSucceeded"]["required"].append("brand_new")
    assert breaking_changes(schema, mutated)


def test_adding_an_optional_property_is_fine() -> None:
    schema = all_schemas()["orders.team_assigned.v1"]
    mutated = json.loads(json.dumps(schema))
    mutated["$defs"]["TeamAssigned"]["properties"]["extra"] = {"type": "string"}
    assert breaking_changes(schema, mutated) == []
