from typing import Annotated
from uuid import UUID

from contracts.money import Money
from fastapi import APIRouter, Header, Response, status
from servicekit.http import CurrentPrincipal, SessionDep
from servicekit.problems import Problem

from payments.adapters.tables import PaymentRow, RefundRow
from payments.entrypoints.http.dependencies import PaymentsDep
from payments.entrypoints.http.schemas import CheckoutIn, CheckoutOut, PaymentOut, RefundIn, RefundOut
from payments.service_layer import checkout, refunds
from payments.service_layer.plans import authorize_school

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


def _money(minor: int, currency: str) -> Money:
    return Money(amount_minor=minor, currency=currency)


def _refund_out(refund: RefundRow) -> RefundOut:
    return RefundOut(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=_money(refund.amount_minor, refund.currency),
        status=refund.status,
        reason=refund.reason,
        provider_reference=refund.provider_reference,
        created_at=refund.created_at,
    )


def _payment_out(payment: PaymentRow, refund_rows: list[RefundRow]) -> PaymentOut:
    return PaymentOut(
        id=payment.id,
        installment_id=payment.installment_id,
        order_id=payment.order_id,
        school_id=payment.school_id,
        provider=payment.provider,
        method=payment.method,
        amount=_money(payment.amount_minor, payment.currency),
        refunded=_money(payment.refunded_minor, payment.currency),
        status=payment.status,
        provider_reference=payment.provider_reference,
        failure_reason=payment.failure_reason,
        checkout=payment.checkout,
        refunds=[_refund_out(r) for r in refund_rows],
        created_at=payment.created_at,
        updated_at=payment.updated_at,
    )


@router.get("/{payment_id}", response_model=PaymentOut)
async def get_payment(payment_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> PaymentOut:
    payment = await session.get(PaymentRow, payment_id)
    if payment is None:
        raise Problem(404, "Not found", f"Payment {payment_id} does not exist.")
    authorize_school(principal, payment.school_id, f"Payment {payment_id}")
    return _payment_out(payment, await refunds.refunds_of(session, payment.id))


@router.post("/installments/{installment_id}/checkout", status_code=status.HTTP_201_CREATED, response_model=CheckoutOut)
async def start_checkout(
    installment_id: UUID,
    body: CheckoutIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    payments: PaymentsDep,
    idempotency_key: IdempotencyKey = None,
) -> CheckoutOut:
    payment = await checkout.start_checkout(
        session, payments.providers, principal, installment_id, body, idempotency_key
    )
    return CheckoutOut(
        payment_id=payment.id,
        provider=payment.provider,
        status=payment.status,
        amount=_money(payment.amount_minor, payment.currency),
        redirect_url=payment.checkout.get("redirect_url"),
        client_secret=payment.checkout.get("client_secret"),
        instructions=payment.checkout.get("instructions"),
        provider_reference=payment.provider_reference,
    )


@router.post("/{payment_id}/refunds", status_code=status.HTTP_201_CREATED, response_model=RefundOut)
async def refund(
    payment_id: UUID,
    body: RefundIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    payments: PaymentsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RefundOut:
    row, created = await refunds.request_refund(
        session, payments.providers, principal, payment_id, body, idempotency_key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return _refund_out(row)
