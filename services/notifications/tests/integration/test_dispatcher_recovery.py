"""The dispatcher alone (no broker): a crashed replica's lease expires and the message is sent once;
a retry is held for quiet hours like a new message."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from contracts.envelope import Envelope
from notifications.adapters.repository import Recipient, insert_messages
from notifications.bootstrap import Components, build
from notifications.service_layer.planning import MessageSpec
from notifications.service_layer.preferences import set_preference
from notifications.service_layer.sending import OutgoingMessage
from sandbox import RunningSandbox
from sqlalchemy import text

from .conftest import settings_for
from .events import order_created, plan_created

pytestmark = pytest.mark.integration


@pytest.fixture
async def components(notifications_db: str, sandbox: RunningSandbox) -> AsyncIterator[Components]:
    runtime, parts = build(settings_for(notifications_db, sandbox, f"td{uuid4().hex[:8]}."))
    try:
        yield parts
    finally:
        await parts.http.aclose()
        await parts.webhooks.http.aclose()
        await parts.redis.aclose()
        await runtime.db.dispose()


async def _plan(components: Components, phones: list[str], *, urgent: bool = False) -> None:
    spec = MessageSpec(
        event_id=uuid4(),
        event_type="test",
        template="bulk_message",
        variables={"subject": "s", "text": "Term starts Monday."},
        channels=("sms",),
        urgent=urgent,
    )
    recipients = [Recipient(UUID(int=0), "Parent", "en", phone, None) for phone in phones]
    async with components.dispatcher.db.transaction() as session:
        await insert_messages(session, await components.planner.build_rows(session, spec, recipients))


async def _statuses(components: Components) -> list[Any]:
    async with components.dispatcher.db.engine.connect() as conn:
        return list((await conn.execute(text("SELECT status, lease_until FROM messages ORDER BY id"))).all())


async def test_expired_lease_is_claimed_again_and_a_live_one_is_not(
    components: Components, sandbox_http: httpx.AsyncClient
) -> None:
    await _plan(components, ["+263771110001", "+263771110002"])
    db = components.dispatcher.db
    async with db.transaction() as session:
        # One row was claimed by a replica that crashed long ago, the other by one still working on it.
        await session.execute(
            text(
                "UPDATE messages SET status = 'sending', lease_until = now() - interval '1 minute' "
                "WHERE id = (SELECT id FROM messages ORDER BY id LIMIT 1)"
            )
        )
        await session.execute(
            text(
                "UPDATE messages SET status = 'sending', lease_until = now() + interval '1 hour' "
                "WHERE id = (SELECT id FROM messages ORDER BY id DESC LIMIT 1)"
            )
        )

    handled = await components.dispatcher.dispatch_once()
    again = await components.dispatcher.dispatch_once()

    assert (handled, again) == (1, 0)
    sent = (await sandbox_http.get("/_sandbox/sms")).json()
    assert len(sent) == 1
    assert sorted(s.status for s in await _statuses(components)) == ["sending", "sent"]


async def test_a_group_of_sends_is_recorded_with_attempts_and_outbox_events(
    components: Components, sandbox_http: httpx.AsyncClient
) -> None:
    phones = [f"+26377222{i:04d}" for i in range(60)]
    await _plan(components, phones)
    total = 0
    while total < 60:
        total += await components.dispatcher.dispatch_once()

    async with components.dispatcher.db.engine.connect() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM messages WHERE status = 'sent'), "
                    "(SELECT count(*) FROM message_attempts WHERE outcome = 'accepted'), "
                    "(SELECT count(*) FROM outbox WHERE routing_key = 'notifications.notification_sent.v1')"
                )
            )
        ).one()
    assert tuple(counts) == (60, 60, 60)
    assert len((await sandbox_http.get("/_sandbox/sms")).json()) == 60


async def test_a_replica_killed_after_the_gateway_accepted_does_not_send_twice(
    components: Components, sandbox_http: httpx.AsyncClient
) -> None:
    phone = "+263771110003"
    await _plan(components, [phone])
    async with components.dispatcher.db.engine.connect() as conn:
        message_id, body = (await conn.execute(text("SELECT id, body FROM messages"))).one()
    # The dead replica got as far as the gateway's acceptance, never to recording it; its lease ran out.
    first = await components.sender.send(OutgoingMessage(str(message_id), "sms", phone, body))
    async with components.dispatcher.db.transaction() as session:
        await session.execute(text("UPDATE messages SET status = 'sending', lease_until = now() - interval '1 s'"))

    assert await components.dispatcher.dispatch_once() == 1

    assert first.accepted is not None
    assert len((await sandbox_http.get("/_sandbox/sms", params={"to": phone})).json()) == 1
    async with components.dispatcher.db.engine.connect() as conn:
        recorded = (await conn.execute(text("SELECT status, provider_message_id FROM messages"))).one()
    assert tuple(recorded) == ("sent", first.accepted.provider_message_id)


async def test_an_event_racing_its_order_created_is_planned_not_stranded(components: Components) -> None:
    school_id = uuid4()
    created = Envelope.wrap(order_created(school_id, phone="+263771110004"))
    plan = Envelope.wrap(plan_created(created.data.order_id, school_id))
    db = components.dispatcher.db

    # order_created is being planned (contact written, not yet committed) when the plan event arrives.
    async with db.transaction() as first:
        await components.planner.handle_event(created, first)
        racing = asyncio.create_task(_handle_in_own_transaction(components, plan))
        await asyncio.sleep(0.2)  # give the racing transaction its chance to look for the contact
    await racing

    async with db.engine.connect() as conn:
        templates = (await conn.execute(text("SELECT template FROM messages WHERE channel = 'sms'"))).scalars().all()
        deferred = (await conn.execute(text("SELECT count(*) FROM deferred_events"))).scalar_one()
    assert sorted(templates) == ["order_created", "payment_plan_created"]
    assert deferred == 0


async def _handle_in_own_transaction(components: Components, envelope: Envelope[Any]) -> None:
    async with components.dispatcher.db.transaction() as session:
        await components.planner.handle_event(envelope, session)


HARARE = ZoneInfo("Africa/Harare")


@pytest.mark.parametrize(
    ("failed_at", "urgent", "retry_at"),
    [
        # the first retry is due 0.1 s later: at 22:00, inside the recipient's 22 → 6 window
        (datetime(2026, 11, 23, 21, 59, 59, 900_000, tzinfo=HARARE), False, datetime(2026, 11, 24, 6, tzinfo=HARARE)),
        (datetime(2026, 11, 23, 21, 59, 59, 900_000, tzinfo=HARARE), True, None),
        (datetime(2026, 11, 23, 21, 59, 59, 800_000, tzinfo=HARARE), False, None),
    ],
    ids=["falls-in-quiet-hours", "urgent", "before-quiet-hours"],
)
async def test_a_retry_that_would_fall_in_quiet_hours_waits_for_their_end(
    components: Components,
    sandbox_http: httpx.AsyncClient,
    failed_at: datetime,
    urgent: bool,
    retry_at: datetime | None,
) -> None:
    phone = "+263771110005"
    await _plan(components, [phone], urgent=urgent)  # planned outside any quiet window: due at once
    async with components.dispatcher.db.transaction() as session:
        hashed = components.vault.blind_index(phone)
        await set_preference(session, hashed, "sms", quiet_start=22, quiet_end=6, timezone="Africa/Harare")
    for provider in ("telone", "econet"):
        fault = {"fail_rate": 1.0, "status": 503}
        (await sandbox_http.post(f"/_sandbox/faults/{provider}", json=fault)).raise_for_status()
    components.dispatcher.clock = lambda: failed_at

    assert await components.dispatcher.dispatch_once() == 1

    async with components.dispatcher.db.engine.connect() as conn:
        status, due, error = (
            await conn.execute(text("SELECT status, next_attempt_at, last_error FROM messages"))
        ).one()
    assert status == "pending"
    expected = retry_at or failed_at + timedelta(seconds=0.1)
    assert due == expected
    assert error.endswith("; held for quiet hours") == (retry_at is not None), error
