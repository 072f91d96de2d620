"""PayNow (Zimbabwe): web checkout and mobile express (EcoCash / OneMoney), form-encoded and hashed."""

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sandbox.callbacks import DeliveryOptions
from sandbox.deps import CallbackUrlsDep, DispatcherDep, PublicBaseDep, SettingsDep, fault_gate
from sandbox.paynow_hash import hash_is_valid, with_hash
from sandbox.problems import ProblemError

router = APIRouter(prefix="/paynow", tags=["paynow"], dependencies=[Depends(fault_gate("paynow"))])
control = APIRouter(prefix="/_sandbox/paynow", tags=["control: paynow"])

FORM = "application/x-www-form-urlencoded"
PaynowStatus = Literal[
    "Created", "Sent", "Awaiting Delivery", "Delivered", "Paid", "Cancelled", "Failed", "Disputed", "Refunded"
]
MOBILE_METHODS = ("ecocash", "onemoney")
_INSTRUCTIONS = {
    "ecocash": "Dial *151*2*4# and enter your EcoCash PIN to approve the payment",
    "onemoney": "Dial *111# and enter your OneMoney PIN to approve the payment",
}


@dataclass
class PaynowTransaction:
    guid: str
    reference: str
    paynow_reference: str
    amount: str
    additional_info: str
    return_url: str
    result_url: str
    auth_email: str
    method: str
    phone: str | None
    poll_url: str
    status: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    history: list[str] = field(default_factory=list)

    def status_fields(self) -> dict[str, str]:
        return {
            "reference": self.reference,
            "paynowreference": self.paynow_reference,
            "amount": self.amount,
            "status": self.status,
            "pollurl": self.poll_url,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "guid": self.guid,
            "reference": self.reference,
            "paynowreference": self.paynow_reference,
            "amount": self.amount,
            "additionalinfo": self.additional_info,
            "returnurl": self.return_url,
            "resulturl": self.result_url,
            "authemail": self.auth_email,
            "method": self.method,
            "phone": self.phone,
            "pollurl": self.poll_url,
            "status": self.status,
            "history": self.history,
            "created_at": self.created_at.isoformat(),
        }


class PaynowStore:
    def __init__(self) -> None:
        self.transactions: dict[str, PaynowTransaction] = {}
        self._references = itertools.count(1_000_001)

    def reset(self) -> None:
        self.transactions.clear()

    def next_reference(self) -> str:
        return str(next(self._references))


def _store(request: Request) -> PaynowStore:
    store: PaynowStore = request.app.state.sandbox.paynow
    return store


PaynowStoreDep = Annotated[PaynowStore, Depends(_store)]


def _form(fields: dict[str, str], status_code: int = 200) -> Response:
    return Response(urlencode(fields), status_code=status_code, media_type=FORM)


def _error(message: str) -> Response:
    # PayNow answers errors in the same form encoding, without a hash.
    return _form({"status": "Error", "error": message}, status_code=400)


async def _read_form(request: Request) -> dict[str, str]:
    # Keep the order the fields arrived in: the hash depends on it.
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


def _check(fields: dict[str, str], settings: SettingsDep, required: tuple[str, ...]) -> str | None:
    missing = [name for name in required if not fields.get(name)]
    if missing:
        return f"Missing required field(s): {', '.join(missing)}"
    if fields["id"] != settings.paynow_integration_id:
        return "Invalid Id."
    if not hash_is_valid(fields, settings.paynow_integration_key):
        return "Hashes do not match"
    try:
        amount = Decimal(fields["amount"])
    except InvalidOperation:
        return "Invalid amount field"
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        return "Invalid amount field"
    return None


def _new_transaction(
    store: PaynowStore, fields: dict[str, str], base: str, result_url: str, method: str, phone: str | None
) -> PaynowTransaction:
    guid = secrets.token_hex(16)
    tx = PaynowTransaction(
        guid=guid,
        reference=fields["reference"],
        paynow_reference=store.next_reference(),
        amount=f"{Decimal(fields['amount']):.2f}",
        additional_info=fields.get("additionalinfo", ""),
        return_url=fields.get("returnurl", ""),
        result_url=fields.get("resulturl") or result_url,
        auth_email=fields.get("authemail", ""),
        method=method,
        phone=phone,
        poll_url=f"{base}/paynow/interface/checkpayment/?guid={guid}",
        status="Sent" if phone else "Created",
    )
    tx.history.append(tx.status)
    store.transactions[guid] = tx
    return tx


_WEB_REQUIRED = ("id", "reference", "amount", "status", "hash")


@router.post("/interface/initiatetransaction")
async def initiate_transaction(
    request: Request, store: PaynowStoreDep, settings: SettingsDep, base: PublicBaseDep, urls: CallbackUrlsDep
) -> Response:
    fields = await _read_form(request)
    if (problem := _check(fields, settings, _WEB_REQUIRED)) is not None:
        return _error(problem)
    tx = _new_transaction(store, fields, base, urls.get("paynow"), "web", None)
    reply = {
        "status": "Ok",
        "browserurl": f"{base}/paynow/payment/confirmtransaction/?guid={tx.guid}",
        "pollurl": tx.poll_url,
    }
    return _form(with_hash(reply, settings.paynow_integration_key))


@router.post("/interface/remotetransaction")
async def remote_transaction(
    request: Request, store: PaynowStoreDep, settings: SettingsDep, base: PublicBaseDep, urls: CallbackUrlsDep
) -> Response:
    fields = await _read_form(request)
    if (problem := _check(fields, settings, (*_WEB_REQUIRED, "phone", "method"))) is not None:
        return _error(problem)
    method = fields["method"].lower()
    if method not in MOBILE_METHODS:
        return _error(f"Invalid method: {fields['method']}")
    phone = fields["phone"]
    if not (phone.isdigit() and ((len(phone) == 10 and phone.startswith("07")) or phone.startswith("2637"))):
        return _error("Invalid phone number")
    tx = _new_transaction(store, fields, base, urls.get("paynow"), method, phone)
    reply = {
        "status": "Ok",
        "instructions": f"{_INSTRUCTIONS[method]} of USD {tx.amount}.",
        "pollurl": tx.poll_url,
        "paynowreference": tx.paynow_reference,
    }
    return _form(with_hash(reply, settings.paynow_integration_key))


@router.api_route("/interface/checkpayment/", methods=["GET", "POST"])
async def poll_transaction(guid: str, store: PaynowStoreDep, settings: SettingsDep) -> Response:
    tx = store.transactions.get(guid)
    if tx is None:
        return _error("Transaction not found")
    return _form(with_hash(tx.status_fields(), settings.paynow_integration_key))


@router.get("/payment/confirmtransaction/")
async def browser_page(guid: str, store: PaynowStoreDep) -> Response:
    tx = store.transactions.get(guid)
    if tx is None:
        return Response("Transaction not found", status_code=404, media_type="text/plain")
    page = f"<html><body><h1>PayNow sandbox</h1><p>{tx.reference}: USD {tx.amount} ({tx.status})</p></body></html>"
    return Response(page, media_type="text/html")


# --- control ------------------------------------------------------------------------------------------


class StatusChange(DeliveryOptions):
    status: PaynowStatus
    # What the transaction reports as its amount from now on: lets a test play a provider's odd answer.
    amount: str | None = None


@control.get("/transactions")
async def list_transactions(store: PaynowStoreDep, reference: str | None = None) -> list[dict[str, Any]]:
    return [tx.as_json() for tx in store.transactions.values() if reference in (None, tx.reference)]


@control.post("/{guid}/status")
async def change_status(
    guid: str, change: StatusChange, store: PaynowStoreDep, settings: SettingsDep, dispatcher: DispatcherDep
) -> dict[str, Any]:
    tx = store.transactions.get(guid)
    if tx is None:
        raise ProblemError(404, f"no PayNow transaction with guid {guid}")
    tx.status = change.status
    if change.amount is not None:
        tx.amount = change.amount
    tx.history.append(change.status)
    body = urlencode(with_hash(tx.status_fields(), settings.paynow_integration_key)).encode()
    callback = dispatcher.record(
        provider="paynow",
        kind=f"status.{change.status}",
        subject=guid,
        url=tx.result_url,
        body=body,
        content_type=FORM,
    )
    dispatcher.dispatch(callback, change)
    return {"transaction": tx.as_json(), "callback_id": callback.id}
