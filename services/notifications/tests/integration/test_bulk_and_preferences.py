"""Bulk fan-out through the broker, recipient preferences (STOP, opt-out, quiet hours), school contacts,
and templates that cannot render parking their event."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from contracts.money import Money
from contracts.payments import PaymentFailed, PaymentSucceeded
from notifications.adapters.templating import Templates
from servicekit.parking import list_parked
from servicekit.testing import AMQP_URL

from .conftest import Service, ServiceFactory, eventually
from .events import PHONE, order_created, plan_created

pytestmark = pytest.mark.integration

BULK = "/api/v1/notifications/bulk"


def _auth(token: Callable[..., str], **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**kwargs)}"}


def _phone(i: int) -> str:
    return f"+26371{2000000 + i}"


async def test_bulk_fans_out_in_chunks_dedupes_and_honours_opt_out(
    service_factory: ServiceFactory, sandbox_http: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    service = await service_factory(bulk_chunk_size=40)
    opt_out = await service.client.put(
        "/api/v1/notifications/preferences",
        json={"address": _phone(7), "channel": "sms", "opted_out": True},
        headers=_auth(token),
    )
    assert opt_out.status_code == 204
    recipients = [
        {"name": f"Parent {i}", "phone": _phone(i), "language": ["en", "sn", "nd"][i % 3]} for i in range(100)
    ]
    recipients.append({"name": "Parent 0 again", "phone": _phone(0)})
    started = await service.client.post(
        BULK,
        json={"channel": "sms", "text": "School closes on Friday.", "recipients": recipients},
        headers=_auth(token),
    )
    assert started.status_code == 202, started.text
    bulk_id = started.json()["id"]
    assert started.json()["chunks"] == 3

    async def completed() -> dict[str, Any] | None:
        body: dict[str, Any] = (await service.client.get(f"{BULK}/{bulk_id}", headers=_auth(token))).json()
        return body if body["status"] == "completed" else None

    progress = await completed_or_fail(completed)
    assert progress["total"] == 101
    assert progress["planned"] == 100
    assert progress["counts"]["suppressed"] == 1
    assert progress["counts"]["sent"] + progress["counts"]["delivered"] == 99
    sent = (await sandbox_http.get("/_sandbox/sms")).json()
    assert len(sent) == 99
    assert _phone(7) not in {m["to"] for m in sent}
    assert {m["text"] for m in sent} == {"School closes on Friday."}


async def completed_or_fail(probe: Callable[[], Any]) -> dict[str, Any]:
    result: dict[str, Any] = await eventually(probe, attempts=400)
    return result


async def test_bad_bulk_requests_write_nothing(service: Service, token: Callable[..., str]) -> None:
    bad_phone = {"channel": "sms", "text": "hi", "recipients": [{"phone": _phone(1)}, {"phone": "12"}]}
    no_email = {"channel": "email", "text": "hi", "recipients": [{"phone": _phone(1)}]}
    school_admin = _auth(token, role="school_admin", school_id=uuid4())
    answers = [
        await service.client.post(BULK, json=bad_phone, headers=_auth(token)),
        await service.client.post(BULK, json=no_email, headers=_auth(token)),
        await service.client.post(BULK, json={"channel": "sms", "text": "hi", "recipients": []}, headers=_auth(token)),
        await service.client.post(BULK, json={**bad_phone, "recipients": [{"phone": _phone(1)}]}, headers=school_admin),
    ]
    assert [a.status_code for a in answers] == [422, 422, 422, 403]
    assert answers[0].json()["invalid_indices"] == [1]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert await service.scalar("SELECT count(*) FROM bulk_jobs") == 0
    assert await service.scalar("SELECT count(*) FROM outbox") == 0


async def test_stop_reply_suppresses_later_sms_but_not_email(
    service: Service, sandbox_http: httpx.AsyncClient, school_id: UUID
) -> None:
    stop = await service.client.post("/api/v1/notifications/inbound/sms", json={"from": "0771234567", "text": "STOP"})
    assert stop.json() == {"opted_out": True}

    event = order_created(school_id)
    await service.publish(event, school_id=school_id)

    async def settled() -> list[Any] | None:
        rows = await service.rows("SELECT channel, status FROM messages WHERE status NOT IN ('pending', 'sending')")
        return rows if len(rows) == 2 else None

    statuses = {r["channel"]: r["status"] for r in await eventually(settled)}
    assert statuses["sms"] == "suppressed"
    assert statuses["email"] in {"sent", "delivered"}
    assert (await sandbox_http.get("/_sandbox/sms")).json() == []


async def test_quiet_hours_hold_normal_messages_but_not_urgent_ones(
    service: Service, sandbox_http: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    hour = datetime.now(UTC).astimezone(ZoneInfo("Africa/Harare")).hour
    quiet = {"channel": "sms", "quiet_start": hour, "quiet_end": (hour + 2) % 24, "timezone": "Africa/Harare"}
    response = await service.client.put(
        "/api/v1/notifications/preferences", json={"address": PHONE, **quiet}, headers=_auth(token)
    )
    assert response.status_code == 204
    order = order_created(school_id, email=None)
    await service.publish(order, school_id=school_id)
    await eventually(lambda: service.scalar("SELECT count(*) FROM messages"))
    amount = Money(amount_minor=375_000, currency="USD")
    common = {"payment_id": uuid4(), "order_id": order.order_id, "school_id": school_id, "installment_id": uuid4()}
    await service.publish(PaymentFailed(**common, amount=amount, provider="ecocash", reason="insufficient funds"))
    await service.publish(
        PaymentSucceeded(**common, installment_sequence=1, amount=amount, provider="paynow", provider_reference="r")
    )

    async def urgent_sent() -> list[Any] | None:
        rows = await service.rows(
            "SELECT template FROM messages WHERE channel = 'sms' AND status IN ('sent', 'delivered')"
        )
        return rows or None

    [sent] = await eventually(urgent_sent)
    assert sent["template"] == "payment_failed"
    held = await service.rows(
        "SELECT template, last_error, next_attempt_at > now() AS later FROM messages WHERE status = 'pending' "
        "AND channel = 'sms' ORDER BY template"
    )
    assert [(r["template"], r["last_error"], r["later"]) for r in held] == [
        ("order_created", "held for quiet hours", True),
        ("payment_succeeded", "held for quiet hours", True),
    ]
    [sms] = (await sandbox_http.get("/_sandbox/sms")).json()
    assert "failed" in sms["text"]

    # a STOP while they wait: the held messages are never sent
    stop = await service.client.post("/api/v1/notifications/inbound/sms", json={"from": PHONE, "text": "STOP"})
    assert stop.json() == {"opted_out": True}
    after = await service.rows(
        "SELECT template, CASE WHEN status = 'delivered' THEN 'sent' ELSE status END AS status FROM messages "
        "WHERE channel = 'sms' ORDER BY template"
    )
    assert [(r["template"], r["status"]) for r in after] == [
        ("order_created", "suppressed"),
        ("payment_failed", "sent"),
        ("payment_succeeded", "suppressed"),
    ]


async def test_registered_school_contacts_receive_school_events(
    service: Service, sandbox_http: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    admin = _auth(token, role="school_admin", school_id=school_id)
    created = await service.client.post(
        "/api/v1/notifications/recipients",
        json={"name": "Bursar", "phone": "0783 111 222", "language": "sn"},
        headers=admin,
    )
    invalid = await service.client.post(
        "/api/v1/notifications/recipients", json={"name": "x", "phone": "123"}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["phone"] == "+26378****222"
    assert invalid.status_code == 422

    await service.publish(order_created(school_id, email=None), school_id=school_id)

    async def both() -> list[dict[str, Any]] | None:
        got: list[dict[str, Any]] = (await sandbox_http.get("/_sandbox/sms")).json()
        return got if len(got) == 2 else None

    texts = {m["to"]: m["text"] for m in await eventually(both)}
    assert texts["+263783111222"].startswith("Mhoro Bursar")
    assert texts[PHONE].startswith("Hello Mrs Moyo")
    log = await service.client.get("/api/v1/notifications/messages", params={"recipient": "0783111222"}, headers=admin)
    assert [m["recipient"] for m in log.json()["items"]] == ["+26378****222"]


async def test_a_template_missing_a_variable_parks_the_event_and_sends_nothing(
    service: Service, sandbox_http: httpx.AsyncClient, school_id: UUID, tmp_path: Path
) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "order_created.j2").write_text(
        "{% block sms %}Hello {{ name }}, your {{ no_such_variable }} is ready{% endblock %}"
    )
    service.components.planner.templates = Templates(tmp_path)
    envelope = await service.publish(order_created(school_id), school_id=school_id)

    queue = next(q for q in service.runtime.consumers.queue_names() if q.endswith("orders.order_created.v1"))

    async def parked() -> list[Any] | None:
        found = await list_parked(AMQP_URL, f"{queue}.parking")
        return found or None

    [message] = await eventually(parked)
    assert message.message_id == str(envelope.event_id)
    assert "no_such_variable" in message.reason
    assert await service.scalar("SELECT count(*) FROM messages") == 0
    assert (await sandbox_http.get("/_sandbox/sms")).json() == []


async def test_a_time_zone_alone_updates_the_zone_the_quiet_hours_are_read_in(
    service: Service, token: Callable[..., str]
) -> None:
    url, headers = "/api/v1/notifications/preferences", _auth(token)
    quiet = {"address": PHONE, "channel": "sms", "quiet_start": 22, "quiet_end": 6, "timezone": "Africa/Harare"}
    assert (await service.client.put(url, json=quiet, headers=headers)).status_code == 204
    moved = {"address": PHONE, "channel": "sms", "timezone": "Europe/London"}
    assert (await service.client.put(url, json=moved, headers=headers)).status_code == 204
    [row] = await service.rows("SELECT quiet_start, quiet_end, timezone, opted_out FROM preferences")
    assert (row["quiet_start"], row["quiet_end"], row["timezone"], row["opted_out"]) == (22, 6, "Europe/London", False)


async def test_an_event_before_its_order_reaches_the_order_contact_when_the_school_has_contacts(
    service: Service, sandbox_http: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    admin = _auth(token, role="school_admin", school_id=school_id)
    bursar = {"name": "Bursar", "phone": "0783 111 222", "language": "en"}
    assert (
        await service.client.post("/api/v1/notifications/recipients", json=bursar, headers=admin)
    ).status_code == 201
    order = order_created(school_id, email=None)
    await service.publish(plan_created(order.order_id, school_id), school_id=school_id)
    await eventually(lambda: service.scalar("SELECT count(*) FROM deferred_events"))
    await service.publish(order, school_id=school_id)

    async def plan_messages() -> list[dict[str, Any]] | None:
        rows = await service.rows(
            "SELECT address_masked AS to FROM messages WHERE template = 'payment_plan_created' ORDER BY 1"
        )
        return rows if len(rows) == 2 else None

    assert [r["to"] for r in await eventually(plan_messages)] == ["+26377****567", "+26378****222"]
    assert await service.scalar("SELECT count(*) FROM deferred_events") == 0


async def test_a_school_admin_sets_preferences_only_for_the_schools_own_contacts(
    service: Service, token: Callable[..., str], school_id: UUID
) -> None:
    await service.publish(order_created(school_id, email=None), school_id=school_id)  # PHONE: this school's
    await eventually(lambda: service.scalar("SELECT count(*) FROM messages"))
    url = "/api/v1/notifications/preferences"
    stranger = _auth(token, role="school_admin", school_id=uuid4())
    own = _auth(token, role="school_admin", school_id=school_id)
    body = {"address": PHONE, "channel": "sms", "opted_out": True}

    refused = await service.client.put(url, json=body, headers=stranger)
    assert refused.status_code == 404
    assert refused.headers["content-type"] == "application/problem+json"
    assert await service.scalar("SELECT count(*) FROM preferences") == 0
    assert (await service.client.put(url, json=body, headers=own)).status_code == 204
    assert await service.scalar("SELECT count(*) FROM preferences WHERE opted_out") == 1
