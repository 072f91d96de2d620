import hashlib
import hmac
import json

import httpx
from sandbox import RunningSandbox

from .conftest import received

TEMPLATE = {
    "messaging_product": "whatsapp",
    "to": "263771234567",
    "type": "template",
    "template": {
        "name": "payment_received",
        "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "USD 125.00"}]}],
    },
}


def _send(client: httpx.Client, sandbox: RunningSandbox, body: dict, token: str | None = None) -> httpx.Response:
    token = token or sandbox.settings.whatsapp_access_token
    return client.post(
        "/whatsapp/v21.0/106540352242922/messages", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_template_message_gets_signed_status_webhooks(sandbox: RunningSandbox, client: httpx.Client) -> None:
    client.put("/_sandbox/callback-urls/whatsapp", json={"url": f"{sandbox.base_url}/receiver/wa"})
    reply = _send(client, sandbox, TEMPLATE).json()
    wamid = reply["messages"][0]["id"]

    deliveries = received(client, "wa", 3)
    secret = sandbox.settings.whatsapp_app_secret.encode()
    for delivery in deliveries:
        raw = delivery["body"].encode()
        expected = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(delivery["headers"]["x-hub-signature-256"], expected)
    statuses = [json.loads(d["body"])["entry"][0]["changes"][0]["value"]["statuses"][0] for d in deliveries]

    assert reply["messaging_product"] == "whatsapp"
    assert reply["contacts"][0]["wa_id"] == "263771234567"
    assert wamid.startswith("wamid.")
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {s["id"] for s in statuses} == {wamid}
    [stored] = client.get("/_sandbox/whatsapp").json()
    assert stored["template"]["name"] == "payment_received"


def test_failed_outcome_and_bad_requests(sandbox: RunningSandbox, client: httpx.Client) -> None:
    client.put("/_sandbox/whatsapp/behaviour", json={"outcome": "failed"})
    client.put("/_sandbox/callback-urls/whatsapp", json={"url": f"{sandbox.base_url}/receiver/wa-failed"})
    _send(client, sandbox, TEMPLATE)
    [delivery] = received(client, "wa-failed", 1)
    status = json.loads(delivery["body"])["entry"][0]["changes"][0]["value"]["statuses"][0]

    unauthorized = _send(client, sandbox, TEMPLATE, token="nope")
    missing_template = _send(client, sandbox, {**TEMPLATE, "template": None})

    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == 131026
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["code"] == 190
    assert missing_template.status_code == 422


def test_a_retried_send_with_the_same_key_is_one_message(sandbox: RunningSandbox, client: httpx.Client) -> None:
    url = "/whatsapp/v21.0/106540352242922/messages"
    auth = {"Authorization": f"Bearer {sandbox.settings.whatsapp_access_token}"}

    first = client.post(url, json=TEMPLATE, headers={**auth, "Idempotency-Key": "msg-1"})
    retried = client.post(url, json=TEMPLATE, headers={**auth, "Idempotency-Key": "msg-1"})
    other = client.post(url, json=TEMPLATE, headers={**auth, "Idempotency-Key": "msg-2"})

    assert retried.json()["messages"][0]["id"] == first.json()["messages"][0]["id"]
    assert other.json()["messages"][0]["id"] != first.json()["messages"][0]["id"]
    assert len(client.get("/_sandbox/whatsapp").json()) == 2
