from uuid import uuid4

import pytest
from contracts.envelope import Envelope, RawEnvelope
from contracts.money import Money, percent_of, split_evenly
from contracts.orders import Contact, OrderCreated
from contracts.routing import payload_type
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError


def _order_created() -> OrderCreated:
    return OrderCreated(
        order_id=uuid4(),
        school_id=uuid4(),
        package_code="growth",
        student_count=450,
        add_ons=["rush_migration"],
        payment_option="split",
        total=Money(amount_minor=750000, currency="USD"),
        contact=Contact(name="Head", phone="+263771234567"),
    )


def test_envelope_round_trips_through_json() -> None:
    env = Envelope.wrap(_order_created(), school_id=uuid4())
    raw = RawEnvelope.model_validate_json(env.model_dump_json())
    assert raw.event_type == "orders.order_created"
    assert env.routing_key == "orders.order_created.v1"
    assert raw.decode(OrderCreated) == env


def test_follow_up_keeps_the_conversation() -> None:
    first = Envelope.wrap(_order_created())
    second = first.follow_up(_order_created())
    assert second.correlation_id == first.correlation_id == first.event_id
    assert second.causation_id == first.event_id


def test_routing_key_lookup_knows_commands() -> None:
    assert payload_type("migrations.cmd.start_job.v1").__name__ == "StartJob"
    with pytest.raises(KeyError):
        payload_type("nope.v1")


def test_money_refuses_floats_and_mixed_currencies() -> None:
    with pytest.raises(ValidationError):
        Money(amount_minor=1.5, currency="USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="currency"):
        Money(amount_minor=1, currency="USD") + Money(amount_minor=1, currency="ZWL")


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=12))
def test_split_evenly_adds_up(total: int, parts: int) -> None:
    shares = split_evenly(total, parts)
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


def test_percent_of_rounds_half_up() -> None:
    assert percent_of(1000, 500) == 50
    assert percent_of(10, 500) == 1  # 0.5 rounds up
