"""The first slice: order and payment-plan events become SMS through the sandbox and log entries."""

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from .conftest import Service, eventually
from .events import PHONE, order_created, plan_created

pytestmark = pytest.mark.integration

LOG = "/api/v1/notifications/messages"


async def _sms_to(sandbox_http: httpx.AsyncClient, to: str, count: int) -> list[dict[str, Any]] | None:
    got: list[dict[str, Any]] = (await sandbox_http.get("/_sandbox/sms", params={"to": to})).json()
    return got if len(got) >= count else None


async def _sent(service: Service, order_id: UUID, count: int) -> int | None:
    n = await service.scalar(
        "SELECT count(*) FROM messages WHERE order_id = :o AND status IN ('sent', 'delivered')", o=order_id
    )
    return n if n >= count else None


async def test_order_created_sends_one_sms_and_logs_it(
    service: Service, sandbox_http: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    event = order_created(school_id)
    envelope = await service.publish(event, school_id=school_id)
    await service.publish_envelope(envelope)  # a redelivery / replay: must not send twice

    [sms] = await eventually(lambda: _sms_to(sandbox_http, PHONE, 1))
    await eventually(lambda: _sent(service, event.order_id, 2))  # the SMS and the e-mail

    assert sms["provider"] == "telone"
    assert "Mrs Moyo" in sms["text"]
    assert str(event.order_id)[:8].upper() in sms["text"]
    response = await service.client.get(
        LOG, params={"order_id": str(event.order_id)}, headers={"Authorization": f"Bearer {token()}"}
    )
    assert response.status_code == 200, response.text
    by_channel = {m["channel"]: m for m in response.json()["items"]}
    assert set(by_channel) == {"sms", "email"}
    assert by_channel["sms"]["provider_message_id"] == sms["id"]
    assert by_channel["sms"]["recipient"] == "+26377****567"
    assert by_channel["sms"]["status"] in {"sent", "delivered"}
    assert len(await _sms_to(sandbox_http, PHONE, 1) or []) == 1
    stored = await service.scalar("SELECT address_enc FROM messages WHERE channel = 'sms'")
    assert PHONE not in stored


async def test_school_admin_sees_only_their_school(
    service: Service, sandbox_http: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    mine, other_school = order_created(school_id), uuid4()
    theirs = order_created(other_school, phone="+263772222222", email=None)
    await service.publish(mine, school_id=school_id)
    await service.publish(theirs, school_id=other_school)
    await eventually(lambda: _sent(service, mine.order_id, 2))
    await eventually(lambda: _sent(service, theirs.order_id, 1))

    admin = {"Authorization": f"Bearer {token('school_admin', school_id=school_id)}"}
    own = await service.client.get(LOG, headers=admin)
    foreign = await service.client.get(LOG, params={"order_id": str(theirs.order_id)}, headers=admin)
    forbidden = await service.client.get(LOG, params={"school_id": str(other_school)}, headers=admin)
    anonymous = await service.client.get(LOG)
    everything = await service.client.get(LOG, headers={"Authorization": f"Bearer {token()}"})

    assert {m["order_id"] for m in own.json()["items"]} == {str(mine.order_id)}
    assert foreign.json()["items"] == []
    assert forbidden.status_code == 403
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert everything.json()["total"] == 3


async def test_plan_event_before_the_order_waits_for_the_contact(
    service: Service, sandbox_http: httpx.AsyncClient, school_id: UUID
) -> None:
    order = order_created(school_id, email=None)
    await service.publish(plan_created(order.order_id, school_id), school_id=school_id)
    await eventually(lambda: service.scalar("SELECT count(*) FROM deferred_events"))

    await service.publish(order, school_id=school_id)
    texts = await eventually(lambda: _sms_to(sandbox_http, PHONE, 2))

    assert sorted("payment plan for order" in t["text"] for t in texts) == [False, True]
    assert await service.scalar("SELECT count(*) FROM deferred_events") == 0
