"""Reconciliation: ask the providers about every payment still open after N minutes and settle it,
and compare recently paid ones with the provider's books, reporting any difference."""

import logging
from datetime import timedelta
from typing import Any

from servicekit.db import Database
from sqlmodel import col, select

from payments.adapters.providers.base import ProviderError
from payments.adapters.providers.registry import Providers
from payments.adapters.tables import JobRunRow, PaymentRow, now
from payments.domain.states import OPEN, PAID
from payments.service_layer.ledger import apply_status, ref
from payments.service_layer.schedule import try_lock

log = logging.getLogger(__name__)
LOCK_KEY = "payments.reconcile"


async def reconcile(
    db: Database, providers: Providers, *, older_than: timedelta, recent_paid: timedelta = timedelta(days=1)
) -> dict[str, Any] | None:
    """Settle open payments from the providers' answers; None when another replica is reconciling."""
    async with db.transaction() as session:
        if not await try_lock(session, LOCK_KEY):
            return None
        cutoff = now() - older_than
        open_ids = (
            await session.scalars(
                select(PaymentRow.id).where(col(PaymentRow.status).in_(OPEN), col(PaymentRow.created_at) <= cutoff)
            )
        ).all()
        paid_ids = (
            await session.scalars(
                select(PaymentRow.id).where(
                    col(PaymentRow.status).in_(PAID), col(PaymentRow.updated_at) >= now() - recent_paid
                )
            )
        ).all()
        report: dict[str, Any] = {"checked": 0, "settled": [], "mismatches": [], "errors": []}
        for payment_id in [*open_ids, *paid_ids]:
            async with session.begin_nested():
                payment = (
                    await session.scalars(select(PaymentRow).where(PaymentRow.id == payment_id).with_for_update())
                ).one()
                report["checked"] += 1
                try:
                    truth = await providers.get(payment.provider).lookup(ref(payment))
                except (ProviderError, ValueError) as exc:  # ValueError: an answer we cannot read, e.g. its amount
                    report["errors"].append({"payment_id": str(payment.id), "error": str(exc)})
                    continue
                if payment.status in OPEN and truth.status is not None and truth.status != payment.status:
                    booking = await apply_status(
                        session, payment, truth.status, truth.amount_minor, truth.currency, truth.failure_reason
                    )
                    entry = {"payment_id": str(payment.id), "provider": truth.raw_status, "outcome": booking.outcome}
                    (report["settled"] if booking.outcome == "applied" else report["mismatches"]).append(
                        {**entry, "reason": booking.reason}
                    )
                elif payment.status in PAID and (
                    truth.status not in PAID or truth.amount_minor != payment.amount_minor
                ):
                    report["mismatches"].append(
                        {
                            "payment_id": str(payment.id),
                            "ours": f"{payment.status} {payment.amount_minor} {payment.currency}",
                            "provider": f"{truth.raw_status} {truth.amount_minor} {truth.currency}",
                        }
                    )
        run = JobRunRow(job="reconcile", report=report, finished_at=now())
        session.add(run)
        if report["mismatches"]:
            log.warning("reconciliation found %d mismatches: %s", len(report["mismatches"]), report["mismatches"])
        return report
