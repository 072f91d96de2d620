"""Outbound webhooks: signed Standard Webhooks deliveries, retries, attempt log, replay, SSRF, disabling."""

import base64
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from .conftest import Service, ServiceFactory, eventually
from .events import order_created

pytestmark = pytest.mark.integration

ENDPOINTS = "/api/v1/webhooks/endpoints"


def _auth(token: Callable[..., str], **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**kwargs)}"}


async def _received(sandbox_http: httpx.AsyncClient, name: str, count: int) -> list[dict[str, Any]] | None:
    got: list[dict[str, Any]] = (await sandbox_http.get(f"/_sandbox/receiver/{name}")).json()
    return got if len(got) >= count else None


async def _register(service: Service, token: Callable[..., str], url: str, **extra: Any) -> httpx.Response:
    body = {"url": url, "event_types": ["orders.order_created"], **extra}
    return await service.client.post(ENDPOINTS, json=body, headers=_auth(token))


async def _failing_endpoint(
    service: Service, sandbox_http: httpx.AsyncClient, token: Callable[..., str], url: str, **extra: Any
) -> str:
    """An endpoint registered at the sandbox receiver `url`, which answers 500 to everything; its id."""
    name = url.rsplit("/", 1)[1]
    await sandbox_http.put(f"/_sandbox/receiver/{name}/behaviour", json={"fail_next": 100, "status": 500})
    return str((await _register(service, token, url, **extra)).json()["id"])


async def _one_delivery_fails(service: Service, school_id: UUID) -> None:
    """An event for the endpoint, every attempt of which fails."""
    await service.publish(order_created(school_id, phone=None, email=None), school_id=school_id)
    await eventually(lambda: _delivery(service, "failed"))


async def _delivery(service: Service, status: str) -> Any:
    rows = await service.rows("SELECT * FROM webhook_deliveries WHERE status = :s", s=status)
    return rows[0] if rows else None


async def test_receiver_failing_twice_gets_the_event_once_signed_and_attempts_are_logged(
    service_factory: ServiceFactory,
    sandbox_http: httpx.AsyncClient,
    token: Callable[..., str],
    school_id: UUID,
    sandbox: Any,
) -> None:
    service = await service_factory(webhook_retry_schedule_s=[0, 0.05, 0.05, 0.05])
    await sandbox_http.put("/_sandbox/receiver/hooks/behaviour", json={"fail_next": 2, "status": 503})
    registered = await _register(service, token, f"{sandbox.base_url}/receiver/hooks")
    assert registered.status_code == 201, registered.text
    endpoint = registered.json()
    assert endpoint["secret"].startswith("whsec_")

    event = order_created(school_id)
    envelope = await service.publish(event, school_id=school_id)
    await service.publish_envelope(envelope)  # redelivered: still one delivery
    await eventually(lambda: _delivery(service, "succeeded"))

    requests = await _received(sandbox_http, "hooks", 3) or []
    assert [r["answered"] for r in requests] == [503, 503, 200]
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1  # same id on every retry
    last = requests[-1]
    body = base64.b64decode(last["body_base64"])
    payload = Webhook(endpoint["secret"]).verify(body, last["headers"])
    assert payload["type"] == "orders.order_created"
    assert payload["data"]["order_id"] == str(event.order_id)
    assert last["headers"]["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + base64.b64encode(b"x" * 24).decode()).verify(body, last["headers"])

    log = await service.client.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries", headers=_auth(token))
    [delivery] = log.json()
    assert delivery["status"] == "succeeded"
    assert [(a["attempt"], a["status_code"]) for a in delivery["attempt_log"]] == [(1, 503), (2, 503), (3, 200)]

    replay = await service.client.post(f"/api/v1/webhooks/deliveries/{delivery['id']}/replay", headers=_auth(token))
    assert replay.status_code == 202
    again = await eventually(lambda: _received(sandbox_http, "hooks", 4))
    assert again[-1]["headers"]["webhook-id"] == last["headers"]["webhook-id"]


async def test_an_endpoint_failing_too_long_is_disabled_and_its_owner_told(
    service_factory: ServiceFactory,
    sandbox_http: httpx.AsyncClient,
    token: Callable[..., str],
    school_id: UUID,
    sandbox: Any,
) -> None:
    service = await service_factory(webhook_retry_schedule_s=[0, 0.05, 0.05], webhook_disable_after_s=0)
    endpoint_id = await _failing_endpoint(
        service, sandbox_http, token, f"{sandbox.base_url}/receiver/down", owner_email="integrator@partner.example"
    )

    await _one_delivery_fails(service, school_id)

    endpoint = (await service.client.get(f"{ENDPOINTS}/{endpoint_id}", headers=_auth(token))).json()
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"].startswith("failing since")

    async def owner_mail() -> list[dict[str, Any]] | None:
        got: list[dict[str, Any]] = (
            await sandbox_http.get("/_sandbox/emails", params={"to": "integrator@partner.example"})
        ).json()
        return got or None

    [mail] = await eventually(owner_mail)
    assert "disabled" in mail["subject"].lower()


async def test_a_failure_after_a_long_quiet_spell_starts_a_new_streak_instead_of_disabling(
    service_factory: ServiceFactory,
    sandbox_http: httpx.AsyncClient,
    token: Callable[..., str],
    school_id: UUID,
    sandbox: Any,
) -> None:
    service = await service_factory(webhook_retry_schedule_s=[0, 0.05, 0.05])  # disabled after 5 days
    endpoint_id = await _failing_endpoint(service, sandbox_http, token, f"{sandbox.base_url}/receiver/quiet")
    # It last failed six days ago, and nothing was sent to it since.
    async with service.runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE webhook_endpoints SET failing_since = now() - interval '6 days' WHERE id = :id"),
            {"id": UUID(endpoint_id)},
        )

    await _one_delivery_fails(service, school_id)

    [endpoint] = await service.rows(
        "SELECT enabled, failing_since > now() - interval '1 hour' AS fresh FROM webhook_endpoints"
    )
    assert (endpoint["enabled"], endpoint["fresh"]) == (True, True)


async def test_loopback_targets_are_refused_outside_test_settings(
    service_factory: ServiceFactory, token: Callable[..., str]
) -> None:
    service = await service_factory(allow_private_targets=False)
    responses = [await _register(service, token, url) for url in ("http://127.0.0.1:8080/h", "https://10.1.2.3/h")]
    assert [r.status_code for r in responses] == [422, 422]
    assert responses[0].headers["content-type"] == "application/problem+json"
    assert await service.scalar("SELECT count(*) FROM webhook_endpoints") == 0


async def test_endpoint_api_validates_scopes_and_deletes(
    service: Service, token: Callable[..., str], school_id: UUID, sandbox: Any
) -> None:
    url = f"{sandbox.base_url}/receiver/x"
    unknown = await service.client.post(
        ENDPOINTS, json={"url": url, "event_types": ["orders.nope"]}, headers=_auth(token)
    )
    team = await service.client.post(
        ENDPOINTS, json={"url": url, "event_types": ["*"]}, headers=_auth(token, role="team_member")
    )
    school = _auth(token, role="school_admin", school_id=school_id)
    mine = await service.client.post(ENDPOINTS, json={"url": url, "event_types": ["*"]}, headers=school)
    platform = await _register(service, token, url)
    listed = await service.client.get(ENDPOINTS, headers=school)
    deleted = await service.client.delete(f"{ENDPOINTS}/{mine.json()['id']}", headers=school)
    foreign = await service.client.delete(f"{ENDPOINTS}/{platform.json()['id']}", headers=school)

    assert unknown.status_code == 422
    assert team.status_code == 403
    assert mine.status_code == 201
    assert mine.json()["school_id"] == str(school_id)
    assert [e["id"] for e in listed.json()] == [mine.json()["id"]]
    assert "secret" not in listed.json()[0]
    assert deleted.status_code == 204
    assert foreign.status_code == 404
    assert (await service.client.get(ENDPOINTS, headers=school)).json() == []
