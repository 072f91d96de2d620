"""Refunds: platform admins only, never above what was paid, idempotent per Idempotency-Key."""

from uuid import NAMESPACE_URL, UUID, uuid5

from servicekit.auth import Principal
from servicekit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from payments.adapters.providers.base import ProviderError
from payments.adapters.providers.registry import Providers
from payments.adapters.tables import PaymentRow, RefundRow
from payments.domain.states import PAID
from payments.entrypoints.http.schemas import RefundIn
from payments.service_layer.ledger import ref, succeed_refund

_KEYS = uuid5(NAMESPACE_URL, "https://oneclass.example/payments/refunds")


async def request_refund(
    session: AsyncSession,
    providers: Providers,
    principal: Principal,
    payment_id: UUID,
    body: RefundIn,
    idempotency_key: str | None,
) -> tuple[RefundRow, bool]:
    """The refund and whether it is new (False: the same key asked before and this is its answer)."""
    if not principal.is_platform_admin:  # before anything about the request: who may not refund hears only that
        raise Problem(403, "Forbidden", "Only platform admins may refund.")
    if not idempotency_key:
        raise Problem(400, "Idempotency-Key required", "Refunds need an Idempotency-Key header.")
    payment = (await session.scalars(select(PaymentRow).where(PaymentRow.id == payment_id).with_for_update())).first()
    if payment is None:
        raise Problem(404, "Not found", f"Payment {payment_id} does not exist.")
    existing = (
        await session.scalars(
            select(RefundRow).where(RefundRow.payment_id == payment.id, RefundRow.idempotency_key == idempotency_key)
        )
    ).first()
    if existing is not None:
        if body.amount_minor is not None and body.amount_minor != existing.amount_minor:
            raise Problem(409, "Idempotency conflict", "This Idempotency-Key was used for a different refund.")
        return existing, False
    if payment.status not in PAID:
        raise Problem(409, "Not refundable", f"Payment {payment_id} is {payment.status}: nothing was paid to refund.")
    pending = sum(
        (
            await session.scalars(
                select(RefundRow.amount_minor).where(RefundRow.payment_id == payment.id, RefundRow.status == "pending")
            )
        ).all()
    )
    refundable = payment.amount_minor - payment.refunded_minor - pending
    amount = body.amount_minor if body.amount_minor is not None else refundable
    if refundable <= 0:
        raise Problem(409, "Not refundable", f"Payment {payment_id} has nothing left to refund.", refundable_minor=0)
    if amount > refundable:
        raise Problem(
            422,
            "Refund too large",
            f"{amount} is more than the {refundable} still refundable on payment {payment_id}.",
            refundable_minor=refundable,
        )
    refund = RefundRow(
        id=uuid5(_KEYS, f"{payment.id}:{idempotency_key}"),
        payment_id=payment.id,
        amount_minor=amount,
        currency=payment.currency,
        idempotency_key=idempotency_key,
        reason=body.reason,
        requested_by=principal.sub,
    )
    try:
        started = await providers.get(payment.provider).refund(ref(payment), refund.id, amount, str(refund.id))
    except ProviderError as exc:
        raise Problem(exc.status, "Provider refused", str(exc), provider=payment.provider) from exc
    refund.provider_reference = started.provider_reference
    session.add(refund)
    await session.flush()
    if started.succeeded:
        # The provider's own answer is its lookup: book it now; its webhook will then be a no-op.
        await succeed_refund(session, payment, refund)
    return refund, True


async def refunds_of(session: AsyncSession, payment_id: UUID) -> list[RefundRow]:
    rows = await session.scalars(
        select(RefundRow).where(RefundRow.payment_id == payment_id).order_by(col(RefundRow.created_at))
    )
    return list(rows.all())
