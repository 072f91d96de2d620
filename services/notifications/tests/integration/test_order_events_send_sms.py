"""The first slice: order and payment-plan events become SMS through the sandbox and log entries."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from contracts.migrations import JobScheduled

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


async def test_a_scheduled_migration_is_announced_24_h_2_h_and_30_min_before(service: Service, school_id: UUID) -> None:
    order = order_created(school_id, email=None)
    await service.publish(order, school_id=school_id)
    await eventually(lambda: _sent(service, order.order_id, 1))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)

    async def reminders(count: int) -> list[Any] | None:
        rows = await service.rows(
            "SELECT next_attempt_at AS due, body, last_error FROM messages "
            "WHERE template = 'migration_scheduled' AND status = 'pending' ORDER BY next_attempt_at"
        )
        return rows if len(rows) == count else None

    job = JobScheduled(job_id=uuid4(), order_id=order.order_id, scheduled_for=start)
    await service.publish(job, school_id=school_id)
    planned = await eventually(lambda: reminders(3))
    assert [r["due"] for r in planned] == [
        start - timedelta(hours=24),
        start - timedelta(hours=2),
        start - timedelta(minutes=30),
    ]
    assert "starts in 24 h" in planned[0]["body"]

    # Moved to an hour from now: the old reminders go, and of the new ones only the 30-minute one is ahead.
    sooner = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    await service.publish(job.model_copy(update={"scheduled_for": sooner}), school_id=school_id)
    [moved] = await eventually(lambda: reminders(1))
    assert moved["due"] == sooner - timedelta(minutes=30)
    superseded = await service.scalar(
        "SELECT count(*) FROM messages WHERE template = 'migration_scheduled' AND status = 'suppressed'"
    )
    assert superseded == 3
