"""SMS provider fallback (outage and timeouts), recovery, shared rate limits, delivery reports."""

from typing import Any
from uuid import UUID

import httpx
import pytest

from .conftest import ServiceFactory, eventually
from .events import order_created

pytestmark = pytest.mark.integration


def _phone(i: int) -> str:
    return f"+26377{1000000 + i}"


async def _count(service: Any, sql: str, expected: int) -> int | None:
    n: int = await service.scalar(sql)
    return n if n >= expected else None


async def _sandbox_sms(sandbox_http: httpx.AsyncClient) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = (await sandbox_http.get("/_sandbox/sms")).json()
    return got


@pytest.mark.parametrize(
    "fault",
    [
        {"fail_rate": 1.0, "status": 503},
        {"fail_rate": 1.0, "timeout": True, "hang_ms": 3000},
    ],
    ids=["outage", "timeout"],
)
async def test_primary_down_every_message_goes_once_through_secondary_then_back(
    service_factory: ServiceFactory, sandbox_http: httpx.AsyncClient, school_id: UUID, fault: dict[str, Any]
) -> None:
    service = await service_factory(provider_timeout_s=0.3, circuit_failure_threshold=2, circuit_reset_s=0.05)
    (await sandbox_http.post("/_sandbox/faults/telone", json=fault)).raise_for_status()
    for i in range(6):
        await service.publish(order_created(school_id, phone=_phone(i), email=None), school_id=school_id)
    await eventually(lambda: _count(service, "SELECT count(*) FROM messages WHERE status <> 'pending'", 6))
    await eventually(lambda: _count(service, "SELECT count(*) FROM messages WHERE status IN ('sent','delivered')", 6))

    during = await _sandbox_sms(sandbox_http)
    assert sorted(m["to"] for m in during) == sorted(_phone(i) for i in range(6))  # each exactly once
    assert {m["provider"] for m in during} == {"econet"}
    tried = await service.scalar("SELECT count(*) FROM message_attempts WHERE provider = 'telone'")
    assert tried >= 2  # the primary was tried (and failed) before the circuit opened

    (await sandbox_http.delete("/_sandbox/faults/telone")).raise_for_status()
    for i in range(6, 8):
        await service.publish(order_created(school_id, phone=_phone(i), email=None), school_id=school_id)
    await eventually(lambda: _count(service, "SELECT count(*) FROM messages WHERE status IN ('sent','delivered')", 8))

    after = [m for m in await _sandbox_sms(sandbox_http) if m["to"] in {_phone(6), _phone(7)}]
    assert [m["provider"] for m in after] == ["telone", "telone"]
    assert len(await _sandbox_sms(sandbox_http)) == 8


async def test_rate_limits_hold_across_two_replicas(
    service_factory: ServiceFactory, sandbox_http: httpx.AsyncClient, school_id: UUID
) -> None:
    limits = {"telone_rate_per_hour": 4, "econet_rate_per_hour": 3, "dispatcher_batch_size": 2}
    first = await service_factory(**limits)
    second = await service_factory(**limits)
    for i in range(10):
        replica = first if i % 2 else second
        await replica.publish(order_created(school_id, phone=_phone(i), email=None), school_id=school_id)

    await eventually(lambda: _count(first, "SELECT count(*) FROM messages WHERE status IN ('sent','delivered')", 7))
    await eventually(
        lambda: _count(first, "SELECT count(*) FROM messages WHERE last_error = 'rate limited on every provider'", 3)
    )

    sent = await _sandbox_sms(sandbox_http)
    assert sum(m["provider"] == "telone" for m in sent) == 4
    assert sum(m["provider"] == "econet" for m in sent) == 3
    assert len({m["to"] for m in sent}) == 7
    held = await first.rows("SELECT status, next_attempt_at > now() AS later FROM messages WHERE provider IS NULL")
    assert [(r["status"], r["later"]) for r in held] == [("pending", True)] * 3


async def test_delivery_reports_update_the_log(
    service_factory: ServiceFactory, sandbox_http: httpx.AsyncClient, school_id: UUID
) -> None:
    service = await service_factory(listen=True)
    await sandbox_http.put("/_sandbox/sms/behaviour", json={"failing_numbers": [_phone(2)]})
    for i in range(3):
        await service.publish(order_created(school_id, phone=_phone(i), email=None), school_id=school_id)

    await eventually(
        lambda: _count(service, "SELECT count(*) FROM messages WHERE status IN ('delivered', 'failed')", 3)
    )
    statuses = {r["to"]: r["status"] for r in await _statuses(service)}
    assert statuses == {"+26377****000": "delivered", "+26377****001": "delivered", "+26377****002": "failed"}
    assert await service.scalar("SELECT count(*) FROM delivery_reports WHERE applied") == 3


async def _statuses(service: Any) -> list[dict[str, Any]]:
    return await service.rows("SELECT address_masked AS to, status FROM messages")


async def test_whatsapp_status_webhooks_must_be_signed(
    service_factory: ServiceFactory, sandbox_http: httpx.AsyncClient, school_id: UUID
) -> None:
    service = await service_factory()
    body = b'{"object": "whatsapp_business_account", "entry": []}'
    unsigned = await service.client.post("/api/v1/notifications/delivery-reports/whatsapp", content=body)
    forged = await service.client.post(
        "/api/v1/notifications/delivery-reports/whatsapp",
        content=body,
        headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert unsigned.status_code == 401
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"


async def test_whatsapp_template_message_and_signed_statuses(
    service_factory: ServiceFactory, sandbox_http: httpx.AsyncClient, school_id: UUID
) -> None:
    from uuid import uuid4

    from contracts.orders import Contact, MilestoneCompleted

    service = await service_factory(listen=True)
    # WhatsApp's webhook URL is configured per app, not per message: point the sandbox's at us.
    webhook = f"{service.components.settings.public_base_url}/api/v1/notifications/delivery-reports/whatsapp"
    (await sandbox_http.put("/_sandbox/callback-urls/whatsapp", json={"url": webhook})).raise_for_status()
    event = MilestoneCompleted(
        order_id=uuid4(),
        school_id=school_id,
        milestone_id=uuid4(),
        name="Data migration",
        sequence=4,
        progress_percent=60,
        contact=Contact(name="Mr Ncube", phone="0772 345 678", language="nd"),
    )
    await service.publish(event, school_id=school_id)

    await eventually(lambda: _count(service, "SELECT count(*) FROM messages WHERE status = 'read'", 1))
    [sent] = (await sandbox_http.get("/_sandbox/whatsapp")).json()
    assert sent["to"] == "+263772345678"
    assert sent["template"]["name"] == "oneclass_milestone_completed_nd"
    params = [p["text"] for p in sent["template"]["components"][0]["parameters"]]
    assert params == ["Mr Ncube", "Data migration", str(event.order_id)[:8].upper(), "60"]
    [sms] = await service.rows("SELECT body, language FROM messages WHERE channel = 'sms'")
    assert sms["language"] == "nd"
    assert sms["body"].startswith("Sawubona Mr Ncube")


async def test_a_delivery_report_reaches_only_its_own_providers_message(
    service_factory: ServiceFactory, sandbox_http: httpx.AsyncClient, school_id: UUID
) -> None:
    service = await service_factory()
    await service.publish(order_created(school_id, email=None), school_id=school_id)

    async def sent() -> list[dict[str, Any]] | None:
        rows = await service.rows(
            "SELECT provider, provider_message_id, status FROM messages WHERE provider_message_id IS NOT NULL"
        )
        return rows or None

    [message] = await eventually(sent)
    assert (message["provider"], message["status"]) in {("telone", "sent"), ("telone", "delivered")}
    # Econet happens to use the same id for one of its own messages, and that one failed.
    report = await service.client.post(
        "/api/v1/notifications/delivery-reports/econet",
        json={"messageId": message["provider_message_id"], "state": "FAILED", "errorCode": "E1"},
    )
    assert report.json() == {"received": 1, "applied": 0}
    assert await service.scalar("SELECT status FROM messages") in {"sent", "delivered"}


async def test_a_numeric_error_code_in_a_delivery_report_is_kept_as_text(service_factory: ServiceFactory) -> None:
    service = await service_factory()
    report = await service.client.post(
        "/api/v1/notifications/delivery-reports/telone", json={"message_id": "x-1", "status": "FAILED", "error_code": 5}
    )
    assert report.status_code == 200, report.text
    assert await service.scalar("SELECT error FROM delivery_reports WHERE provider_message_id = 'x-1'") == "5"
