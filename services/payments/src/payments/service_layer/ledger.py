"""Booking what a provider reports onto our books: the one place money moves.

Webhooks and reconciliation both come here. Every change happens under a row lock on the payment,
only moves it forward, and publishes its event through the outbox in the same transaction, so a
payment is credited once, to its own order, whatever order or how often the news arrives.
"""

import logging
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from contracts.money import Money
from contracts.payments import PaymentFailed, PaymentRefunded, PaymentSucceeded
from servicekit.outbox import add_event
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from payments.adapters.providers.base import PaymentRef, ProviderEvent, ProviderStatus
from payments.adapters.providers.registry import Providers
from payments.adapters.tables import InstallmentRow, PaymentRow, PlanRow, RefundRow, now
from payments.domain.states import PAID, PaymentStatus, can_move, refund_status
from payments.service_layer.events import new_event

log = logging.getLogger(__name__)

Outcome = Literal["applied", "ignored", "quarantined"]
FAMILY = {
    "stripe": ("stripe",),
    "paynow": ("paynow", "onemoney"),
    "onemoney": ("paynow", "onemoney"),
    "ecocash": ("ecocash",),
}


@dataclass(frozen=True)
class Booking:
    outcome: Outcome
    reason: str
    payment_id: UUID | None = None
    dedupe_key: str | None = None


def ref(payment: PaymentRow) -> PaymentRef:
    return PaymentRef(
        payment_id=payment.id,
        provider_reference=payment.provider_reference,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        phone=payment.phone,
        poll_url=payment.poll_url,
    )


def money(minor: int, currency: str) -> Money:
    return Money(amount_minor=minor, currency=currency)


class PaymentNotVisible(RuntimeError):
    """An event for a payment (or refund) id of ours that no committed row holds yet."""


async def find_payment(session: AsyncSession, event: ProviderEvent) -> PaymentRow | None:
    """Our payment for the event, locked. Found by our id when the provider echoes it, else its reference."""
    query = select(PaymentRow).where(col(PaymentRow.provider).in_(FAMILY[event.provider]))
    if event.payment_id is not None:
        query = query.where(PaymentRow.id == event.payment_id)
    elif event.provider_reference:
        query = query.where(PaymentRow.provider_reference == event.provider_reference)
    else:
        return None
    return (await session.scalars(query.with_for_update())).first()


async def book_event(session: AsyncSession, providers: Providers, event: ProviderEvent) -> Booking:
    if event.kind == "ignored":
        return Booking("ignored", f"event type {event.raw_status} is not one we act on")
    if event.kind == "refund" and event.refund_id is not None:
        return await _confirm_refund_by_id(session, providers, event)
    payment = await find_payment(session, event)
    if payment is None and event.payment_id is not None:
        # Our own id: the checkout that created it may not have committed yet (a provider can call back
        # while the checkout request is still in flight), so the delivery is tried again later.
        raise PaymentNotVisible(f"payment {event.payment_id} is not (yet) in our books")
    if payment is None:
        return Booking("quarantined", "unknown payment: no payment of ours matches this event")
    if mismatch := _identity_mismatch(payment, event):
        return Booking("quarantined", mismatch, payment.id)
    if event.kind == "refund":
        return await _book_refunds(session, providers, payment, event)
    target = event.status
    if target is None:
        return Booking(
            "ignored", f"provider status {event.raw_status!r} is unknown: payment kept {payment.status}", payment.id
        )
    if refused := _refused(payment, target, event.raw_status):
        return refused
    amount, currency = event.amount_minor, event.currency
    if event.needs_confirmation:
        truth = await providers.get(payment.provider).lookup(ref(payment))
        if truth.status is None or truth.status != target:
            return Booking(
                "ignored",
                f"not confirmed: provider lookup says {truth.raw_status!r}, event said {event.raw_status!r}",
                payment.id,
            )
        amount, currency = truth.amount_minor, truth.currency
        confirmed = f"{payment.id}:{truth.raw_status}"
    else:
        confirmed = None
    return await apply_status(session, payment, target, amount, currency, event.failure_reason, dedupe_key=confirmed)


def _identity_mismatch(payment: PaymentRow, event: ProviderEvent) -> str | None:
    if (
        event.kind == "payment"
        and event.provider != "paynow"
        and event.provider_reference
        and payment.provider_reference
        and event.provider_reference != payment.provider_reference
    ):
        return f"reference mismatch: event {event.provider_reference}, ours {payment.provider_reference}"
    if event.order_id is not None and event.order_id != payment.order_id:
        return f"order mismatch: event names order {event.order_id}, payment belongs to {payment.order_id}"
    if event.poll_url and payment.poll_url and event.poll_url != payment.poll_url:
        return "poll URL differs from the one PayNow gave us at checkout"
    return None


async def apply_status(
    session: AsyncSession,
    payment: PaymentRow,
    target: PaymentStatus,
    amount_minor: int | None,
    currency: str | None,
    failure_reason: str | None,
    *,
    dedupe_key: str | None = None,
) -> Booking:
    """Move a locked payment forward to what the provider (verified or looked up) says."""
    if refused := _refused(payment, target):
        return refused
    if target == "succeeded" and (amount_minor != payment.amount_minor or (currency or "").upper() != payment.currency):
        return Booking(
            "quarantined",
            f"amount mismatch: provider reports {amount_minor} {currency}, "
            f"we expect {payment.amount_minor} {payment.currency}",
            payment.id,
        )
    installment = await _locked_installment(session, payment) if target == "succeeded" else None
    if installment is not None and installment.status != "open":
        # Another attempt paid it first, or the order was cancelled: the money is real but has nowhere to go.
        return Booking(
            "quarantined",
            f"money reported for an installment already {installment.status}: needs a person (refund it)",
            payment.id,
        )
    previous = payment.status
    payment.status = target
    payment.updated_at = now()
    if installment is not None:
        await _credit(session, payment, installment)
    elif target == "failed":
        payment.failure_reason = failure_reason or "declined by the provider"
        await add_event(
            session,
            new_event(
                PaymentFailed(
                    payment_id=payment.id,
                    order_id=payment.order_id,
                    school_id=payment.school_id,
                    installment_id=payment.installment_id,
                    amount=money(payment.amount_minor, payment.currency),
                    provider=payment.provider,
                    reason=payment.failure_reason,
                ),
                school_id=payment.school_id,
            ),
        )
    log.info("payment %s: %s → %s", payment.id, previous, target)
    return Booking("applied", f"{previous} → {target}", payment.id, dedupe_key)


def _refused(payment: PaymentRow, target: PaymentStatus, said: str | None = None) -> Booking | None:
    """The state machine's answer to a move it does not take, or None when it takes it: money reported for
    a cancelled attempt goes to a person, any other such move is stale or a duplicate (`said`: the event's
    own status, for the record)."""
    if payment.status == "cancelled" and target == "succeeded":
        return Booking("quarantined", "money reported for a cancelled attempt: needs a person", payment.id)
    if can_move(payment.status, target):  # type: ignore[arg-type]
        return None
    if said is None:
        return Booking("ignored", f"stale or duplicate: payment is already {payment.status}", payment.id)
    reason = "duplicate" if payment.status == target else f"stale: payment is already {payment.status}"
    return Booking("ignored", f"{reason} (event says {said})", payment.id)


async def _locked_installment(session: AsyncSession, payment: PaymentRow) -> InstallmentRow:
    return (
        await session.scalars(
            select(InstallmentRow).where(InstallmentRow.id == payment.installment_id).with_for_update()
        )
    ).one()


async def _credit(session: AsyncSession, payment: PaymentRow, installment: InstallmentRow) -> None:
    installment.paid_minor += payment.amount_minor
    if installment.paid_minor >= installment.amount_minor and installment.status == "open":
        installment.status = "paid"
    unpaid = await session.scalar(
        select(func.count())
        .select_from(InstallmentRow)
        .where(InstallmentRow.plan_id == installment.plan_id, col(InstallmentRow.status).in_(("open",)))
    )
    fully_paid = unpaid == 0
    if fully_paid:
        plan = await session.get(PlanRow, installment.plan_id)
        if plan is not None and plan.status == "active":
            plan.status = "paid"
    await add_event(
        session,
        new_event(
            PaymentSucceeded(
                payment_id=payment.id,
                order_id=payment.order_id,
                school_id=payment.school_id,
                installment_id=payment.installment_id,
                installment_sequence=installment.sequence,
                amount=money(payment.amount_minor, payment.currency),
                provider=payment.provider,
                provider_reference=payment.provider_reference or "",
                plan_fully_paid=fully_paid,
            ),
            school_id=payment.school_id,
        ),
    )


async def _book_refunds(
    session: AsyncSession, providers: Providers, payment: PaymentRow, event: ProviderEvent
) -> Booking:
    """The provider says `refunded_minor` in total has gone back: confirm our refunds up to that."""
    total = event.refunded_minor
    if event.needs_confirmation or total is None:
        truth = await providers.get(payment.provider).lookup(ref(payment))
        total = truth.refunded_minor if truth.refunded_minor is not None else total
    if total is None:
        return Booking("ignored", "refund event without an amount", payment.id)
    return await confirm_refunded_total(session, payment, total)


async def confirm_refunded_total(session: AsyncSession, payment: PaymentRow, total_refunded: int) -> Booking:
    if payment.status not in PAID:
        return Booking("quarantined", f"refund reported for a payment that is {payment.status}", payment.id)
    if total_refunded > payment.amount_minor:
        return Booking(
            "quarantined", f"provider refunded {total_refunded}, more than paid {payment.amount_minor}", payment.id
        )
    if total_refunded <= payment.refunded_minor:
        return Booking("ignored", f"duplicate: {payment.refunded_minor} already booked as refunded", payment.id)
    pending = (
        await session.scalars(
            select(RefundRow)
            .where(RefundRow.payment_id == payment.id, RefundRow.status == "pending")
            .order_by(col(RefundRow.created_at))
            .with_for_update()
        )
    ).all()
    booked = payment.refunded_minor
    for refund in pending:
        if booked + refund.amount_minor > total_refunded:
            break
        await succeed_refund(session, payment, refund)
        booked = payment.refunded_minor
    if total_refunded > booked:
        # Refunded outside our API (the provider's dashboard): book it so our books match theirs.
        external = RefundRow(
            payment_id=payment.id,
            amount_minor=total_refunded - booked,
            currency=payment.currency,
            idempotency_key=f"provider-total-{total_refunded}",
            reason="refunded at the provider",
            requested_by="provider",
        )
        session.add(external)
        await session.flush()
        await succeed_refund(session, payment, external)
    return Booking("applied", f"refunded {payment.refunded_minor} of {payment.amount_minor}", payment.id)


async def succeed_refund(session: AsyncSession, payment: PaymentRow, refund: RefundRow) -> None:
    refund.status = "succeeded"
    refund.confirmed_at = now()
    payment.refunded_minor += refund.amount_minor
    payment.status = refund_status(payment.amount_minor, payment.refunded_minor)
    payment.updated_at = now()
    await add_event(
        session,
        new_event(
            PaymentRefunded(
                payment_id=payment.id,
                refund_id=refund.id,
                order_id=payment.order_id,
                school_id=payment.school_id,
                amount=money(refund.amount_minor, refund.currency),
                fully_refunded=payment.status == "refunded",
            ),
            school_id=payment.school_id,
        ),
    )


async def _confirm_refund_by_id(session: AsyncSession, providers: Providers, event: ProviderEvent) -> Booking:
    """EcoCash tells us about our own refund transaction: look it up, then confirm that refund."""
    refund = (await session.scalars(select(RefundRow).where(RefundRow.id == event.refund_id))).first()
    if refund is None:
        # The id is ours (EcoCash echoes our refund's correlator): the refund request that stores it may not
        # have committed yet, since EcoCash notifies while it is in flight. Tried again later.
        raise PaymentNotVisible(f"refund {event.refund_id} is not (yet) in our books")
    payment = (
        await session.scalars(select(PaymentRow).where(PaymentRow.id == refund.payment_id).with_for_update())
    ).one()
    refund = (await session.scalars(select(RefundRow).where(RefundRow.id == refund.id).with_for_update())).one()
    if refund.status != "pending":
        return Booking("ignored", f"duplicate: refund already {refund.status}", payment.id)
    if payment.phone is None:
        return Booking("quarantined", "refund's payment has no phone to look up", payment.id)
    truth: ProviderStatus = await providers.ecocash.lookup_refund(payment.phone, refund.id)
    if truth.status == "succeeded":
        await succeed_refund(session, payment, refund)
        return Booking("applied", "refund confirmed by lookup", payment.id)
    if truth.status == "failed":
        refund.status = "failed"
        return Booking("applied", "refund failed at the provider", payment.id)
    return Booking("ignored", f"refund not confirmed: lookup says {truth.raw_status!r}", payment.id)
