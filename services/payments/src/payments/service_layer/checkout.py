"""Starting a payment: one attempt at one installment through one provider."""

from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from servicekit.auth import Principal
from servicekit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from payments.adapters.providers.base import CheckoutRequest, ProviderError
from payments.adapters.providers.registry import Providers
from payments.adapters.tables import InstallmentRow, PaymentRow
from payments.entrypoints.http.schemas import CheckoutIn
from payments.service_layer.ledger import apply_status
from payments.service_layer.plans import authorize_school

_KEYS = uuid5(NAMESPACE_URL, "https://oneclass.example/payments/checkout")


def payment_id_for(installment_id: UUID, idempotency_key: str | None) -> UUID:
    """The same Idempotency-Key gives the same payment id, hence the same provider key: a retried checkout
    (even one whose first try died after the provider said yes) finds the provider's first transaction."""
    return uuid5(_KEYS, f"{installment_id}:{idempotency_key}") if idempotency_key else uuid4()


def _method(body: CheckoutIn) -> str:
    if body.provider == "stripe":
        return "card"
    if body.provider == "onemoney":
        return "onemoney"
    if body.provider == "ecocash":
        return "ecocash"
    return body.method or ("ecocash" if body.phone else "web")


PAYNOW_METHODS = ("web", "ecocash", "onemoney")


def _check_body(body: CheckoutIn, method: str) -> None:
    offered = PAYNOW_METHODS if body.provider == "paynow" else (method,)
    if body.method not in (None, *offered):
        raise Problem(422, "Validation failed", f"method {body.method!r} is not offered through {body.provider}.")
    if method in ("ecocash", "onemoney") and not body.phone:
        raise Problem(422, "Validation failed", "Mobile money needs the payer's phone number.")
    if body.payment_method and body.provider != "stripe":
        raise Problem(422, "Validation failed", "payment_method is for Stripe only.")


async def start_checkout(
    session: AsyncSession,
    providers: Providers,
    principal: Principal,
    installment_id: UUID,
    body: CheckoutIn,
    idempotency_key: str | None,
) -> PaymentRow:
    method = _method(body)
    _check_body(body, method)
    installment = (
        await session.scalars(select(InstallmentRow).where(InstallmentRow.id == installment_id).with_for_update())
    ).first()
    if installment is None:
        raise Problem(404, "Not found", f"Installment {installment_id} does not exist.")
    authorize_school(principal, installment.school_id, f"Installment {installment_id}")
    payment_id = payment_id_for(installment.id, idempotency_key)
    existing = await session.get(PaymentRow, payment_id)
    if existing is not None:
        if (existing.provider, existing.method) != (body.provider, method):
            raise Problem(409, "Idempotency conflict", "This Idempotency-Key was used for a different checkout.")
        return existing
    if installment.status != "open":
        raise Problem(409, "Installment not payable", f"Installment {installment_id} is {installment.status}.")
    in_flight = (
        await session.scalars(
            select(PaymentRow).where(PaymentRow.installment_id == installment.id, PaymentRow.status == "processing")
        )
    ).first()
    if in_flight is not None:
        raise Problem(
            409, "Payment in progress", f"Payment {in_flight.id} for this installment is still being processed."
        )
    amount = installment.amount_minor - installment.paid_minor
    payment = PaymentRow(
        id=payment_id,
        installment_id=installment.id,
        order_id=installment.order_id,
        school_id=installment.school_id,
        provider=body.provider,
        method=method,
        amount_minor=amount,
        currency=installment.currency,
        idempotency_key=idempotency_key or str(payment_id),
        phone=body.phone,
    )
    request = CheckoutRequest(
        payment_id=payment_id,
        order_id=installment.order_id,
        installment_id=installment.id,
        amount_minor=amount,
        currency=installment.currency,
        method=method,
        description=f"OneClass migration: {installment.label}",
        idempotency_key=str(payment_id),
        phone=body.phone,
        payment_method=body.payment_method,
    )
    try:
        started = await providers.get(body.provider).start_checkout(request)
    except ProviderError as exc:
        raise Problem(exc.status, "Provider refused", str(exc), provider=body.provider) from exc
    payment.provider_reference = started.provider_reference
    payment.poll_url = started.poll_url
    payment.checkout = {
        k: v
        for k, v in {
            "redirect_url": started.redirect_url,
            "client_secret": started.client_secret,
            "instructions": started.instructions,
        }.items()
        if v
    }
    session.add(payment)
    if started.status in ("succeeded", "failed"):
        # Already final (a declined card; a retried EcoCash charge the provider had completed): booked by the
        # ledger like any other answer, so the installment is credited and payment_succeeded/failed go out.
        await session.flush()
        await apply_status(session, payment, started.status, amount, installment.currency, started.failure_reason)
    else:
        payment.status = started.status
    await session.flush()
    return payment
