"""order_created → a stored plan, its event through the outbox, and the plan over HTTP."""

import asyncio
import itertools
from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import uuid4

import pytest
from contracts.envelope import Envelope
from contracts.money import Money
from contracts.orders import OrderCancelled, OrderStatusChanged
from sqlalchemy import text

from ..conftest import PaymentsHarness, eventually, make_order

pytestmark = pytest.mark.integration


def _plan_url(order_id: object) -> str:
    return f"/api/v1/payments/orders/{order_id}/plan"


async def test_full_payment_order_gets_one_installment_and_an_event(
    payments: PaymentsHarness, token: Callable[..., str]
) -> None:
    order = await payments.order_created(payment_option="full", total=Money(amount_minor=712_500, currency="USD"))

    [event] = [
        e for e in payments.spy.of("payments.payment_plan_created") if e["data"]["order_id"] == str(order.order_id)
    ]
    assert event["data"]["total"] == {"amount_minor": 712_500, "currency": "USD"}
    assert [i["amount"]["amount_minor"] for i in event["data"]["installments"]] == [712_500]
    headers = {"Authorization": f"Bearer {token(school_id=order.school_id)}"}
    plan = (await payments.client.get(_plan_url(order.order_id), headers=headers)).json()
    assert plan["status"] == "active"
    assert plan["total"]["amount_minor"] == 712_500
    assert [(i["sequence"], i["due"], i["status"]) for i in plan["installments"]] == [(1, "at_signing", "open")]
    assert plan["installments"][0]["id"] == event["data"]["installments"][0]["installment_id"]


async def test_split_halves_add_up_and_second_falls_due_at_go_live(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    order = await payments.order_created(payment_option="split", total=Money(amount_minor=750_001, currency="USD"))
    plan = (await payments.client.get(_plan_url(order.order_id), headers=admin)).json()
    amounts = [i["amount"]["amount_minor"] for i in plan["installments"]]
    assert amounts == [375_001, 375_000]
    assert plan["installments"][1]["due_date"] is None

    change = OrderStatusChanged(
        order_id=order.order_id, school_id=order.school_id, from_status="testing", to_status="go_live"
    )
    await payments.publish(Envelope.wrap(change, school_id=order.school_id))
    [due] = await payments.spy.wait_for("payments.installment_due")
    assert due["data"]["installment_id"] == plan["installments"][1]["id"]
    assert due["data"]["amount"]["amount_minor"] == 375_000


async def test_extended_plan_is_monthly_and_exact(payments: PaymentsHarness, admin: dict[str, str]) -> None:
    order = await payments.order_created(
        payment_option="extended", months=7, total=Money(amount_minor=1_000_000, currency="ZWL")
    )
    plan = (await payments.client.get(_plan_url(order.order_id), headers=admin)).json()
    amounts = [i["amount"]["amount_minor"] for i in plan["installments"]]
    assert len(amounts) == 7
    assert sum(amounts) == 1_000_000
    assert max(amounts) - min(amounts) <= 1
    dates = [date.fromisoformat(i["due_date"]) for i in plan["installments"]]
    assert all(later > earlier for earlier, later in itertools.pairwise(dates))
    assert {i["amount"]["currency"] for i in plan["installments"]} == {"ZWL"}


async def test_redelivered_order_keeps_one_plan(payments: PaymentsHarness) -> None:
    order = await payments.order_created(payment_option="full")
    await payments.order_created(order_id=order.order_id, school_id=order.school_id, payment_option="full")
    async with payments.runtime.db.engine.connect() as conn:
        plans = (
            await conn.execute(text("SELECT count(*) FROM payment_plans WHERE order_id = :o"), {"o": order.order_id})
        ).scalar_one()
    assert plans == 1


async def test_plan_is_hidden_from_other_schools_and_needs_a_token(
    payments: PaymentsHarness, token: Callable[..., str]
) -> None:
    order = await payments.order_created()
    other = {"Authorization": f"Bearer {token(school_id=uuid4())}"}
    assert (await payments.client.get(_plan_url(order.order_id), headers=other)).status_code == 404
    anonymous = await payments.client.get(_plan_url(order.order_id))
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    missing = await payments.client.get(_plan_url(uuid4()), headers=other)
    assert missing.status_code == 404


async def test_a_cancellation_that_overtakes_its_order_still_cancels_the_plan(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    order = make_order()
    cancelled = OrderCancelled(order_id=order.order_id, school_id=order.school_id, reason="changed their mind")
    await payments.publish(Envelope.wrap(cancelled, school_id=order.school_id))
    await asyncio.sleep(0.5)  # handled (and retried) before order_created is even sent
    await payments.publish(Envelope.wrap(order, school_id=order.school_id))

    async def plan_cancelled() -> dict[str, Any] | None:
        response = await payments.client.get(_plan_url(order.order_id), headers=admin)
        plan: dict[str, Any] = response.json()
        return plan if response.status_code == 200 and plan["status"] == "cancelled" else None

    plan = await eventually(plan_cancelled)
    assert {i["status"] for i in plan["installments"]} == {"cancelled"}
