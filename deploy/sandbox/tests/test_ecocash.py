import httpx
from sandbox import RunningSandbox

from .conftest import received


def _charge(sandbox: RunningSandbox, correlator: str, notify: str, amount: float = 12.5) -> dict:
    return {
        "clientCorrelator": correlator,
        "notifyUrl": notify,
        "referenceCode": f"ORD-{correlator}",
        "tranType": "MER",
        "endUserId": "263771234567",
        "remarks": "OneClass migration",
        "transactionOperationStatus": "Charged",
        "paymentAmount": {
            "charginginformation": {"amount": amount, "currency": "USD", "description": "Installment 1"},
            "chargeMetaData": {"channel": "WEB", "purchaseCategoryCode": "Online Payment", "onBeHalfOf": "OneClass"},
        },
        "merchantCode": "42467",
        "merchantPin": "1357",
        "merchantNumber": "771999313",
        "currencyCode": "USD",
        "countryCode": "ZW",
    }


def _auth(sandbox: RunningSandbox) -> httpx.BasicAuth:
    return httpx.BasicAuth(sandbox.settings.ecocash_username, sandbox.settings.ecocash_password)


def test_charge_lookup_and_completion_callback(sandbox: RunningSandbox, client: httpx.Client) -> None:
    body = _charge(sandbox, "c-100", f"{sandbox.base_url}/receiver/ecocash")
    created = client.post("/ecocash/v1/transactions/amount", json=body, auth=_auth(sandbox))
    assert created.status_code == 200
    tx = created.json()
    assert tx["transactionOperationStatus"] == "PENDING SUBSCRIBER VALIDATION"
    assert tx["ecocashReference"].startswith("MP")

    lookup = client.get("/ecocash/v1/263771234567/transactions/amount/c-100", auth=_auth(sandbox)).json()
    assert lookup["ecocashReference"] == tx["ecocashReference"]

    assert client.post("/_sandbox/ecocash/c-100/complete", json={}).status_code == 200
    [callback] = received(client, "ecocash", 1)
    assert "x-hub-signature-256" not in callback["headers"]
    assert '"transactionOperationStatus": "COMPLETED"' in callback["body"]
    done = client.get("/ecocash/v1/263771234567/transactions/amount/c-100", auth=_auth(sandbox)).json()
    assert done["transactionOperationStatus"] == "COMPLETED"


def test_client_correlator_is_idempotent(sandbox: RunningSandbox, client: httpx.Client) -> None:
    body = _charge(sandbox, "c-200", "http://127.0.0.1:1/unused")
    first = client.post("/ecocash/v1/transactions/amount", json=body, auth=_auth(sandbox)).json()
    again = client.post("/ecocash/v1/transactions/amount", json=body, auth=_auth(sandbox)).json()
    clash = client.post(
        "/ecocash/v1/transactions/amount", json=_charge(sandbox, "c-200", "x", amount=99), auth=_auth(sandbox)
    )

    assert again["ecocashReference"] == first["ecocashReference"]
    assert clash.status_code == 409
    assert len(client.get("/_sandbox/ecocash/transactions").json()) == 1


def test_refund_needs_a_completed_charge_and_bounded_amount(sandbox: RunningSandbox, client: httpx.Client) -> None:
    tx = client.post(
        "/ecocash/v1/transactions/amount", json=_charge(sandbox, "c-300", "http://127.0.0.1:1/x"), auth=_auth(sandbox)
    ).json()
    refund = {
        **_charge(sandbox, "r-300", "http://127.0.0.1:1/x", amount=5),
        "tranType": "REF",
        "originalEcocashReference": tx["ecocashReference"],
    }
    early = client.post("/ecocash/v1/transactions/refund", json=refund, auth=_auth(sandbox))
    assert early.status_code == 400
    assert early.headers["content-type"] == "application/problem+json"
    client.post("/_sandbox/ecocash/c-300/complete", json={"deliver": False})

    done = client.post("/ecocash/v1/transactions/refund", json=refund, auth=_auth(sandbox))
    too_much = client.post(
        "/ecocash/v1/transactions/refund",
        json={
            **refund,
            "clientCorrelator": "r-301",
            "paymentAmount": {"charginginformation": {"amount": 8, "currency": "USD"}},
        },
        auth=_auth(sandbox),
    )
    assert done.json()["transactionOperationStatus"] == "COMPLETED"
    assert too_much.status_code == 400


def test_wrong_credentials_and_bad_input_are_refused(sandbox: RunningSandbox, client: httpx.Client) -> None:
    body = _charge(sandbox, "c-400", "x")
    assert client.post("/ecocash/v1/transactions/amount", json=body, auth=("x", "y")).status_code == 401
    bad = client.post("/ecocash/v1/transactions/amount", json={**body, "endUserId": "12"}, auth=_auth(sandbox))
    assert bad.status_code == 422
    assert client.get("/_sandbox/ecocash/transactions").json() == []
