import httpx
import pytest
from sandbox import RunningSandbox
from sandbox.sms_segments import count_segments

from .conftest import received


def _telone(client: httpx.Client, sandbox: RunningSandbox, **body: str) -> httpx.Response:
    payload = {"to": "+263771234567", "message": "Your migration starts Monday", **body}
    return client.post("/telone/v1/sms", json=payload, headers={"X-API-Key": sandbox.settings.telone_api_key})


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("€" * 80, 1), ("ñ" + "ŵ" * 70, 2)],
)
def test_segments_follow_gsm7_and_ucs2_limits(text: str, segments: int) -> None:
    assert count_segments(text) == segments


def test_fault_injection_fails_the_next_requests_then_recovers(sandbox: RunningSandbox, client: httpx.Client) -> None:
    fault = client.post("/_sandbox/faults/telone", json={"fail_next": 2, "status": 503})
    assert fault.status_code == 200

    outages = [_telone(client, sandbox) for _ in range(2)]
    recovered = _telone(client, sandbox)

    assert [r.status_code for r in outages] == [503, 503]
    assert outages[0].headers["content-type"] == "application/problem+json"
    assert recovered.status_code == 202
    assert len(client.get("/_sandbox/sms", params={"provider": "telone"}).json()) == 1
    assert client.get("/_sandbox/faults/telone").json()["injected"] == 2


def test_fail_rate_one_fails_everything_until_cleared(sandbox: RunningSandbox, client: httpx.Client) -> None:
    client.post("/_sandbox/faults/telone", json={"fail_rate": 1.0, "status": 502})
    assert _telone(client, sandbox).status_code == 502
    assert client.delete("/_sandbox/faults/telone").status_code == 204
    assert _telone(client, sandbox).status_code == 202


def test_delivery_report_goes_to_the_callback_url(sandbox: RunningSandbox, client: httpx.Client) -> None:
    accepted = _telone(client, sandbox, callback_url=f"{sandbox.base_url}/receiver/dlr").json()
    [report] = received(client, "dlr", 1)

    assert accepted["status"] == "ACCEPTED"
    assert f'"message_id": "{accepted["message_id"]}"' in report["body"]
    assert '"status": "DELIVERED"' in report["body"]
    [stored] = client.get("/_sandbox/sms", params={"to": "+263771234567"}).json()
    assert stored["text"] == "Your migration starts Monday"
    assert stored["segments"] == 1


def test_failing_numbers_get_failed_reports(sandbox: RunningSandbox, client: httpx.Client) -> None:
    client.put("/_sandbox/sms/behaviour", json={"failing_numbers": ["+263779999999"]})
    client.put("/_sandbox/callback-urls/econet", json={"url": f"{sandbox.base_url}/receiver/econet-dlr"})
    response = client.post(
        "/econet/v1/messages",
        json={"destination": "+263779999999", "text": "hello", "source": "ONECLASS"},
        headers={"Authorization": f"ApiKey {sandbox.settings.econet_api_key}"},
    )
    [report] = received(client, "econet-dlr", 1)

    assert response.status_code == 201
    assert response.json()["state"] == "QUEUED"
    assert '"state": "FAILED"' in report["body"]


def test_generic_gateway_and_api_keys(sandbox: RunningSandbox, client: httpx.Client) -> None:
    ok = client.post(
        "/generic/sms/send",
        json={"to": "263771234567", "text": "hi", "from": "OneClass"},
        headers={"Authorization": f"Bearer {sandbox.settings.generic_sms_api_key}"},
    )
    wrong = client.post("/generic/sms/send", json={"to": "263771234567", "text": "hi"}, headers={"Authorization": "x"})
    no_key = client.post("/telone/v1/sms", json={"to": "+263771234567", "message": "hi"})

    assert ok.status_code == 200
    assert ok.json()["status"] == "queued"
    assert (wrong.status_code, no_key.status_code) == (401, 401)
    [stored] = client.get("/_sandbox/sms").json()
    assert (stored["provider"], stored["sender"]) == ("generic_sms", "OneClass")


def test_timeout_fault_hangs_past_the_client_timeout(sandbox: RunningSandbox, client: httpx.Client) -> None:
    client.post("/_sandbox/faults/generic_sms", json={"fail_next": 1, "timeout": True, "hang_ms": 3000})
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            "/generic/sms/send",
            json={"to": "263771234567", "text": "hi"},
            headers={"Authorization": f"Bearer {sandbox.settings.generic_sms_api_key}"},
            timeout=0.3,
        )
    assert client.get("/_sandbox/sms").json() == []


@pytest.mark.parametrize(
    ("path", "body", "id_field", "headers"),
    [
        ("/telone/v1/sms", {"to": "+263771112222", "message": "hi", "reference": "msg-1"}, "message_id", "telone"),
        ("/econet/v1/messages", {"destination": "+263771112222", "text": "hi"}, "messageId", "econet"),
        ("/generic/sms/send", {"to": "+263771112222", "text": "hi", "client_ref": "msg-1"}, "id", "generic"),
    ],
)
def test_a_retried_send_with_the_same_key_is_one_sms(
    sandbox: RunningSandbox, client: httpx.Client, path: str, body: dict[str, str], id_field: str, headers: str
) -> None:
    auth = {
        "telone": {"X-API-Key": sandbox.settings.telone_api_key},
        "econet": {"Authorization": f"ApiKey {sandbox.settings.econet_api_key}", "Idempotency-Key": "msg-1"},
        "generic": {"Authorization": f"Bearer {sandbox.settings.generic_sms_api_key}"},
    }[headers]

    first = client.post(path, json=body, headers=auth)
    retried = client.post(path, json=body, headers=auth)
    other = client.post(path, json=body, headers={**auth, "Idempotency-Key": "msg-2"})

    assert first.is_success
    assert retried.status_code == first.status_code
    assert retried.json()[id_field] == first.json()[id_field]
    assert other.json()[id_field] != first.json()[id_field]
    assert len(client.get("/_sandbox/sms", params={"to": "+263771112222"}).json()) == 2


def test_a_reused_key_with_another_text_is_refused(sandbox: RunningSandbox, client: httpx.Client) -> None:
    assert _telone(client, sandbox, reference="msg-9").status_code == 202
    reused = _telone(client, sandbox, reference="msg-9", message="something else")

    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert len(client.get("/_sandbox/sms").json()) == 1
