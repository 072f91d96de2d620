"""EcoCash direct API ("payment/v1" shapes): C2B charge, status lookup, refund, unsigned notify callbacks."""

import base64
import binascii
import json
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from sandbox.callbacks import CallbackDispatcher, DeliveryOptions
from sandbox.deps import CallbackUrlsDep, DispatcherDep, SettingsDep, fault_gate
from sandbox.problems import ProblemError

router = APIRouter(prefix="/ecocash/v1", tags=["ecocash"], dependencies=[Depends(fault_gate("ecocash"))])
control = APIRouter(prefix="/_sandbox/ecocash", tags=["control: ecocash"])

PENDING = "PENDING SUBSCRIBER VALIDATION"
Obj = dict[str, Any]


class ChargingInformation(BaseModel):
    amount: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    description: str = ""


class PaymentAmount(BaseModel):
    model_config = ConfigDict(extra="allow")
    charginginformation: ChargingInformation
    chargeMetaData: dict[str, Any] | None = None


class ChargeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    clientCorrelator: str = Field(min_length=1, max_length=64)
    notifyUrl: str | None = None
    referenceCode: str = Field(min_length=1)
    tranType: str = "MER"
    endUserId: str = Field(pattern=r"^(2637\d{8}|07\d{8})$")
    remarks: str | None = None
    transactionOperationStatus: str = "Charged"
    paymentAmount: PaymentAmount
    merchantCode: str | None = None
    merchantPin: str | None = None
    merchantNumber: str | None = None
    currencyCode: str | None = None
    countryCode: str | None = None


class RefundRequest(ChargeRequest):
    tranType: str = "REF"
    originalEcocashReference: str = Field(min_length=1)


class EcocashStore:
    def __init__(self) -> None:
        self.transactions: dict[str, Obj] = {}
        self._ids = iter(range(10_000_001, 10**12))

    def reset(self) -> None:
        self.transactions.clear()

    def by_reference(self, ecocash_reference: str) -> Obj | None:
        return next((t for t in self.transactions.values() if t["ecocashReference"] == ecocash_reference), None)

    def next_id(self) -> int:
        return next(self._ids)


def _store(request: Request) -> EcocashStore:
    store: EcocashStore = request.app.state.sandbox.ecocash
    return store


EcocashStoreDep = Annotated[EcocashStore, Depends(_store)]


def _service_error(status: int, message_id: str, text: str, *variables: str) -> ProblemError:
    exception = {"messageId": message_id, "text": text, "variables": list(variables)}
    return ProblemError(status, text, extra={"requestError": {"serviceException": exception}})


def _authenticate(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    expected = f"{settings.ecocash_username}:{settings.ecocash_password}"
    scheme, _, encoded = (authorization or "").partition(" ")
    try:
        given = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        given = ""
    if scheme.lower() != "basic" or not secrets.compare_digest(given, expected):
        raise ProblemError(401, "missing or wrong EcoCash credentials", headers={"WWW-Authenticate": "Basic"})


Authenticated = Depends(_authenticate)


def _ecocash_reference() -> str:
    now = datetime.now(UTC)
    return f"MP{now:%y%m%d}.{now:%H%M}.{secrets.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{secrets.randbelow(10**5):05d}"


def _transaction(store: EcocashStore, body: ChargeRequest, notify_url: str, status: str) -> Obj:
    now_ms = int(time.time() * 1000)
    tx: Obj = {
        **body.model_dump(mode="json", exclude_none=True),
        "id": store.next_id(),
        "version": 0,
        "notifyUrl": notify_url,
        "serverReferenceCode": secrets.token_hex(12),
        "ecocashReference": _ecocash_reference(),
        "transactionOperationStatus": status,
        "startTime": now_ms,
        "endTime": now_ms if status != PENDING else None,
    }
    # Amounts go out as numbers, as the real API sends them.
    tx["paymentAmount"]["charginginformation"]["amount"] = float(body.paymentAmount.charginginformation.amount)
    return tx


def _same_request(existing: Obj, body: ChargeRequest) -> bool:
    charged = existing["paymentAmount"]["charginginformation"]
    wanted = body.paymentAmount.charginginformation
    return (
        existing["endUserId"] == body.endUserId
        and Decimal(str(charged["amount"])) == wanted.amount
        and charged["currency"] == wanted.currency
    )


def _idempotent(store: EcocashStore, body: ChargeRequest) -> Obj | None:
    existing = store.transactions.get(body.clientCorrelator)
    if existing is None:
        return None
    if not _same_request(existing, body):
        raise _service_error(
            409, "SVC0005", "Duplicate clientCorrelator %1 with different parameters", body.clientCorrelator
        )
    return existing


def notify(dispatcher: CallbackDispatcher, tx: Obj, options: DeliveryOptions) -> str:
    callback = dispatcher.record(
        provider="ecocash",
        kind=f"transaction.{str(tx['transactionOperationStatus']).lower()}",
        subject=str(tx["clientCorrelator"]),
        url=str(tx["notifyUrl"]),
        body=json.dumps(tx).encode(),
        content_type="application/json",
    )
    dispatcher.dispatch(callback, options)
    return callback.id


@router.post("/transactions/amount", dependencies=[Authenticated])
async def charge(body: ChargeRequest, store: EcocashStoreDep, urls: CallbackUrlsDep) -> Obj:
    if (existing := _idempotent(store, body)) is not None:
        return existing
    tx = _transaction(store, body, body.notifyUrl or urls.get("ecocash"), PENDING)
    store.transactions[body.clientCorrelator] = tx
    return tx


@router.get("/{msisdn}/transactions/amount/{client_correlator}", dependencies=[Authenticated])
async def lookup(msisdn: str, client_correlator: str, store: EcocashStoreDep) -> Obj:
    tx = store.transactions.get(client_correlator)
    if tx is None or tx["endUserId"] != msisdn:
        raise _service_error(404, "SVC0004", "No transaction found for %1", client_correlator)
    return tx


@router.post("/transactions/refund", dependencies=[Authenticated])
async def refund(body: RefundRequest, store: EcocashStoreDep, urls: CallbackUrlsDep, dispatcher: DispatcherDep) -> Obj:
    if (existing := _idempotent(store, body)) is not None:
        return existing
    original = store.by_reference(body.originalEcocashReference)
    if original is None or original["transactionOperationStatus"] != "COMPLETED":
        raise _service_error(
            400, "SVC0002", "No completed transaction with reference %1", body.originalEcocashReference
        )
    refundable = Decimal(str(original["paymentAmount"]["charginginformation"]["amount"])) - Decimal(
        str(original.get("refundedAmount", 0))
    )
    wanted = body.paymentAmount.charginginformation.amount
    if wanted > refundable:
        raise _service_error(400, "SVC0002", "Refund amount exceeds the refundable %1", str(refundable))
    tx = _transaction(store, body, body.notifyUrl or urls.get("ecocash"), "COMPLETED")
    store.transactions[body.clientCorrelator] = tx
    original["refundedAmount"] = float(Decimal(str(original.get("refundedAmount", 0))) + wanted)
    notify(dispatcher, tx, DeliveryOptions())
    return tx


# --- control ------------------------------------------------------------------------------------------


@control.get("/transactions")
async def list_transactions(store: EcocashStoreDep, msisdn: str | None = None) -> list[Obj]:
    return [t for t in store.transactions.values() if msisdn in (None, t["endUserId"])]


async def _finish(
    store: EcocashStore,
    dispatcher: CallbackDispatcher,
    client_correlator: str,
    status: Literal["COMPLETED", "FAILED"],
    options: DeliveryOptions,
) -> Obj:
    tx = store.transactions.get(client_correlator)
    if tx is None:
        raise ProblemError(404, f"no EcoCash transaction with clientCorrelator {client_correlator}")
    if tx["transactionOperationStatus"] != PENDING:
        raise ProblemError(409, f"transaction {client_correlator} is already {tx['transactionOperationStatus']}")
    tx.update(transactionOperationStatus=status, endTime=int(time.time() * 1000), version=tx["version"] + 1)
    callback_id = notify(dispatcher, tx, options)
    return {"transaction": tx, "callback_id": callback_id}


@control.post("/{client_correlator}/complete")
async def complete(
    client_correlator: str, store: EcocashStoreDep, dispatcher: DispatcherDep, options: DeliveryOptions | None = None
) -> Obj:
    return await _finish(store, dispatcher, client_correlator, "COMPLETED", options or DeliveryOptions())


@control.post("/{client_correlator}/fail")
async def fail(
    client_correlator: str, store: EcocashStoreDep, dispatcher: DispatcherDep, options: DeliveryOptions | None = None
) -> Obj:
    return await _finish(store, dispatcher, client_correlator, "FAILED", options or DeliveryOptions())
