import time

import httpx
from sandbox import RunningSandbox, SandboxSettings, running_sandbox

from .conftest import received
from .test_ecocash import _auth, _charge


def test_receiver_fails_then_succeeds(client: httpx.Client) -> None:
    client.put("/_sandbox/receiver/partner/behaviour", json={"fail_next": 2, "status": 500})

    codes = [client.post("/receiver/partner", content=b'{"n": %d}' % i).status_code for i in range(3)]
    recorded = client.get("/_sandbox/receiver/partner").json()

    assert codes == [500, 500, 200]
    assert [r["answered"] for r in recorded] == [500, 500, 200]
    assert recorded[2]["body"] == '{"n": 2}'


def test_replay_with_duplicates_and_reordered_batch(sandbox: RunningSandbox, client: httpx.Client) -> None:
    target = f"{sandbox.base_url}/receiver/ordered"
    callback_ids = []
    for n in range(3):
        correlator = f"order-{n}"
        client.post("/ecocash/v1/transactions/amount", json=_charge(sandbox, correlator, target), auth=_auth(sandbox))
        done = client.post(f"/_sandbox/ecocash/{correlator}/complete", json={"deliver": False}).json()
        callback_ids.append(done["callback_id"])
    assert client.get("/_sandbox/receiver/ordered").json() == []

    client.post(f"/_sandbox/callbacks/{callback_ids[0]}/replay", json={"duplicates": 2})
    assert len(received(client, "ordered", 3)) == 3
    client.delete("/_sandbox/receiver/ordered")
    order = client.post("/_sandbox/callbacks/deliver", json={"event_ids": callback_ids, "order": "reversed"}).json()
    got = received(client, "ordered", 3)

    assert order["order"] == list(reversed(callback_ids))
    assert [g["body"].count('"clientCorrelator": "order-') for g in got] == [1, 1, 1]
    assert ["order-2" in got[0]["body"], "order-1" in got[1]["body"], "order-0" in got[2]["body"]] == [True] * 3
    attempts = client.get(f"/_sandbox/callbacks/{callback_ids[0]}").json()["attempts"]
    assert [a["status_code"] for a in attempts] == [200] * 4


def test_a_delivery_the_receiver_fails_is_retried_until_answered(sandbox: RunningSandbox, client: httpx.Client) -> None:
    client.put("/_sandbox/receiver/flaky/behaviour", json={"fail_next": 2, "status": 503})
    target = f"{sandbox.base_url}/receiver/flaky"
    client.post("/ecocash/v1/transactions/amount", json=_charge(sandbox, "flaky-1", target), auth=_auth(sandbox))
    done = client.post("/_sandbox/ecocash/flaky-1/complete", json={}).json()

    got = received(client, "flaky", 3)
    attempts = client.get(f"/_sandbox/callbacks/{done['callback_id']}").json()["attempts"]
    assert [g["answered"] for g in got] == [503, 503, 200]
    assert [a["status_code"] for a in attempts] == [503, 503, 200]


def test_a_refused_delivery_is_an_answer_and_not_retried(sandbox: RunningSandbox, client: httpx.Client) -> None:
    client.put("/_sandbox/receiver/strict/behaviour", json={"fail_next": 1, "status": 400})
    target = f"{sandbox.base_url}/receiver/strict"
    client.post("/ecocash/v1/transactions/amount", json=_charge(sandbox, "strict-1", target), auth=_auth(sandbox))
    done = client.post("/_sandbox/ecocash/strict-1/complete", json={}).json()

    received(client, "strict", 1)
    time.sleep(1.5)  # longer than the first retry pause: a retry would have arrived by now
    attempts = client.get(f"/_sandbox/callbacks/{done['callback_id']}").json()["attempts"]
    assert [a["status_code"] for a in attempts] == [400]
    assert len(client.get("/_sandbox/receiver/strict").json()) == 1


def test_reset_forgets_everything(sandbox: RunningSandbox, client: httpx.Client) -> None:
    client.post("/receiver/x", content=b"1")
    client.post("/_sandbox/faults/stripe", json={"fail_next": 5})
    client.post("/_sandbox/reset")

    assert client.get("/_sandbox/receiver/x").json() == []
    assert client.get("/_sandbox/faults").json() == {}
    assert client.post("/_sandbox/faults/nonexistent", json={}).status_code == 404


def test_health_and_noop(client: httpx.Client) -> None:
    assert client.get("/_sandbox/health").json()["status"] == "ok"
    assert client.post("/_sandbox/noop").status_code == 200


async def test_running_sandbox_serves_in_process() -> None:
    async with running_sandbox(SandboxSettings()) as sb, httpx.AsyncClient(base_url=sb.base_url) as http:
        health = (await http.get("/_sandbox/health")).json()
        assert health["smtp_port"] == sb.smtp_port
