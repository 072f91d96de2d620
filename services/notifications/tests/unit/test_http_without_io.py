"""HTTP behaviour that touches neither the database nor the broker (the app is built, not started)."""

import hashlib
import hmac

import httpx
from notifications.adapters.providers.whatsapp import valid_hub_signature
from notifications.bootstrap import create_app
from notifications.settings import Settings
from pydantic import SecretStr


async def test_whatsapp_webhook_verification_echoes_the_challenge_only_for_our_token() -> None:
    app = create_app(Settings(whatsapp_verify_token=SecretStr("tok"), log_json=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as client:
        ok = await client.get(
            "/api/v1/notifications/delivery-reports/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"},
        )
        bad = await client.get(
            "/api/v1/notifications/delivery-reports/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
        )
        missing = await client.get("/api/v1/notifications/delivery-reports/whatsapp")
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert bad.status_code == 403
    assert bad.headers["content-type"] == "application/problem+json"
    assert missing.status_code == 422


def test_hub_signature_is_checked_over_the_raw_body() -> None:
    secret = SecretStr("app-secret")
    body = b'{"entry": []}'
    good = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert valid_hub_signature(body, good, secret)
    assert not valid_hub_signature(body + b" ", good, secret)
    assert not valid_hub_signature(body, good.replace("sha256=", "sha1="), secret)
    assert not valid_hub_signature(body, None, secret)


async def test_callbacks_without_the_token_are_refused_before_any_database_work() -> None:
    settings = Settings(
        callback_token=SecretStr("cb-token"),
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/unreachable",
        log_json=False,
    )
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as client:
        report = await client.post(
            "/api/v1/notifications/delivery-reports/telone", json={"message_id": "x", "status": "DELIVERED"}
        )
        wrong = await client.post(
            "/api/v1/notifications/inbound/sms?token=nope", json={"from": "+263771234567", "text": "STOP"}
        )
    assert report.status_code == 401
    assert wrong.status_code == 401
    assert report.headers["content-type"] == "application/problem+json"
