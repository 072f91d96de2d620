from urllib.parse import parse_qsl, urlencode

import httpx
from sandbox import RunningSandbox
from sandbox.paynow_hash import hash_is_valid, paynow_hash, with_hash

from .conftest import received

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _initiate_fields(sandbox: RunningSandbox, reference: str, result_url: str) -> dict[str, str]:
    return {
        "id": sandbox.settings.paynow_integration_id,
        "reference": reference,
        "amount": "25.50",
        "additionalinfo": "Care package: Standard",
        "returnurl": "http://127.0.0.1:8000/return",
        "resulturl": result_url,
        "authemail": "bursar@school.example",
        "status": "Message",
    }


def _form(response: httpx.Response) -> dict[str, str]:
    return dict(parse_qsl(response.text, keep_blank_values=True))


def test_hash_is_uppercase_sha512_of_values_then_key() -> None:
    fields = {"a": "1", "b": "two", "hash": "ignored"}
    import hashlib

    assert paynow_hash(fields, "KEY") == hashlib.sha512(b"1twoKEY").hexdigest().upper()
    assert hash_is_valid(with_hash({"a": "1"}, "KEY"), "KEY")
    assert not hash_is_valid(with_hash({"a": "1"}, "KEY"), "OTHER")


def test_initiate_and_poll_round_trip_with_valid_hashes(sandbox: RunningSandbox, client: httpx.Client) -> None:
    key = sandbox.settings.paynow_integration_key
    fields = with_hash(_initiate_fields(sandbox, "INV-1", f"{sandbox.base_url}/receiver/paynow"), key)

    reply = _form(client.post("/paynow/interface/initiatetransaction", content=urlencode(fields), headers=FORM))
    assert reply["status"] == "Ok"
    assert hash_is_valid(reply, key)
    assert list(reply) == ["status", "browserurl", "pollurl", "hash"]

    poll = _form(client.post(reply["pollurl"]))
    assert hash_is_valid(poll, key)
    assert (poll["reference"], poll["amount"], poll["status"]) == ("INV-1", "25.50", "Created")


def test_tampered_hash_is_refused(sandbox: RunningSandbox, client: httpx.Client) -> None:
    key = sandbox.settings.paynow_integration_key
    fields = with_hash(_initiate_fields(sandbox, "INV-2", "http://127.0.0.1:1/x"), key)
    fields["amount"] = "1.00"  # changed after hashing

    response = client.post("/paynow/interface/initiatetransaction", content=urlencode(fields), headers=FORM)
    reply = _form(response)

    assert response.status_code == 400
    assert reply["status"] == "Error"
    assert "hash" in reply["error"].lower()
    assert client.get("/_sandbox/paynow/transactions").json() == []


def test_mobile_express_paid_status_is_posted_to_the_result_url(sandbox: RunningSandbox, client: httpx.Client) -> None:
    key = sandbox.settings.paynow_integration_key
    fields = _initiate_fields(sandbox, "INV-3", f"{sandbox.base_url}/receiver/paynow-result")
    fields.update(phone="0771111111", method="ecocash")
    reply = _form(
        client.post("/paynow/interface/remotetransaction", content=urlencode(with_hash(fields, key)), headers=FORM)
    )
    assert reply["status"] == "Ok"
    assert hash_is_valid(reply, key)
    assert "EcoCash" in reply["instructions"]
    guid = dict(parse_qsl(reply["pollurl"].split("?", 1)[1]))["guid"]

    assert client.post(f"/_sandbox/paynow/{guid}/status", json={"status": "Paid"}).status_code == 200
    [update] = received(client, "paynow-result", 1)
    posted = dict(parse_qsl(update["body"], keep_blank_values=True))

    assert hash_is_valid(posted, key)
    assert (posted["reference"], posted["status"], posted["paynowreference"]) == (
        "INV-3",
        "Paid",
        reply["paynowreference"],
    )
    assert _form(client.post(reply["pollurl"]))["status"] == "Paid"


def test_unknown_status_is_a_problem(client: httpx.Client) -> None:
    response = client.post("/_sandbox/paynow/nope/status", json={"status": "Teleported"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
