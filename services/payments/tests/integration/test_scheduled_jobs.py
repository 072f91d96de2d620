"""Scheduled jobs against the real database, broker and sandbox: overdue announcements with two scheduler
replicas, and reconciliation (CLI and scheduled) settling what no webhook told us."""

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from payments.bootstrap import build
from payments.service_layer.reconcile import reconcile
from sqlalchemy import text

from ..conftest import PaymentsHarness, checkout, first_installment, payment_status

pytestmark = pytest.mark.integration
MakePayments = Callable[..., Awaitable[PaymentsHarness]]


async def _stripe_paid_unannounced(payments: PaymentsHarness, admin: dict[str, str]) -> dict[str, Any]:
    """A Stripe payment the provider took while its webhook never reached us: pending in our books only."""
    started = await checkout(payments, admin, await first_installment(payments, admin), provider="stripe")
    await payments.sandbox_call(
        "POST", f"/_sandbox/stripe/payment_intents/{started['provider_reference']}/succeed", json={"deliver": False}
    )
    return started


async def test_installment_overdue_with_two_scheduler_replicas_is_published_once(
    make_payments: MakePayments, admin: dict[str, str]
) -> None:
    first = await make_payments()
    installment = await first_installment(first, admin)
    async with first.runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE installments SET due_date = :due WHERE id = :id"),
            {"due": datetime.now(UTC).date() - timedelta(days=3), "id": installment["id"]},
        )
    second = build(first.app.settings.model_copy())  # another replica on the same database
    try:
        replicas = (first.app.scheduler, second.scheduler)
        for _ in range(3):
            await asyncio.gather(*(replica.run_once() for replica in replicas))
    finally:
        await second.providers.close()
        await second.runtime.db.dispose()

    await first.spy.wait_for("payments.installment_overdue")
    await asyncio.sleep(0.5)  # a second announcement, if any, has been relayed by now
    await first.spy.drain()
    overdue = [
        e for e in first.spy.of("payments.installment_overdue") if e["data"]["installment_id"] == installment["id"]
    ]
    assert len(overdue) == 1
    assert overdue[0]["data"]["days_overdue"] == 3
    due = [e for e in first.spy.of("payments.installment_due") if e["data"]["installment_id"] == installment["id"]]
    assert len(due) == 1
    async with first.runtime.db.engine.connect() as conn:
        reports = (await conn.execute(text("SELECT report FROM job_runs WHERE job = 'due_checks'"))).scalars().all()
    assert sum(r["overdue"] for r in reports) == 1


async def test_reconcile_cli_settles_a_stale_pending_payment_and_reports_a_mismatch(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    stale = await _stripe_paid_unannounced(payments, admin)
    disputed = await _stripe_paid_unannounced(payments, admin)
    # Our books disagree with Stripe's about the second payment's amount.
    async with payments.runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE payments SET amount_minor = amount_minor + 100 WHERE id = :id"), {"id": disputed["payment_id"]}
        )

    settings = payments.app.settings
    env = {
        **os.environ,
        "PAYMENTS_DATABASE_URL": settings.database_url,
        "PAYMENTS_STRIPE_API_BASE": settings.stripe_api_base,
        "PAYMENTS_PAYNOW_API_BASE": settings.paynow_api_base,
        "PAYMENTS_ECOCASH_API_BASE": settings.ecocash_api_base,
        "BROKER_NAMESPACE": settings.broker_namespace,
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "payments.entrypoints.cli",
        "reconcile",
        "--older-than-minutes",
        "0",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 1, err.decode()[-2000:]  # 1: a mismatch was found
    report = json.loads(out)
    assert [s["payment_id"] for s in report["settled"]] == [stale["payment_id"]]
    assert [m["payment_id"] for m in report["mismatches"]] == [disputed["payment_id"]]
    assert "amount" in report["mismatches"][0]["reason"]

    await payment_status(payments, admin, stale["payment_id"], "succeeded")
    untouched = (await payments.client.get(f"/api/v1/payments/{disputed['payment_id']}", headers=admin)).json()
    assert untouched["status"] == "pending"
    succeeded = await payments.spy.wait_for("payments.payment_succeeded")
    assert [e["data"]["payment_id"] for e in succeeded] == [stale["payment_id"]]


async def test_scheduled_reconciliation_settles_a_stale_pending_payment(
    make_payments: MakePayments, admin: dict[str, str]
) -> None:
    payments = await make_payments(scheduler_enabled=True, scheduler_interval_s=0.2, reconcile_after_minutes=0)
    stale = await _stripe_paid_unannounced(payments, admin)

    await payment_status(payments, admin, stale["payment_id"], "succeeded")
    async with payments.runtime.db.engine.connect() as conn:
        reports = (await conn.execute(text("SELECT report FROM job_runs WHERE job = 'reconcile'"))).scalars().all()
    settled = [s for r in reports for s in r["settled"]]
    assert [s["payment_id"] for s in settled] == [stale["payment_id"]]
    assert (await payments.spy.wait_for("payments.payment_succeeded"))[0]["data"]["payment_id"] == stale["payment_id"]


async def test_one_unreadable_provider_answer_does_not_stop_the_reconciliation(
    payments: PaymentsHarness, admin: dict[str, str]
) -> None:
    odd = await checkout(payments, admin, await first_installment(payments, admin), provider="paynow")
    [tx] = await payments.sandbox_call("GET", "/_sandbox/paynow/transactions", params={"reference": odd["payment_id"]})
    await payments.sandbox_call(
        "POST", f"/_sandbox/paynow/{tx['guid']}/status", json={"status": "Paid", "amount": "1.2.3", "deliver": False}
    )
    stale = await _stripe_paid_unannounced(payments, admin)

    report = await reconcile(payments.runtime.db, payments.app.providers, older_than=timedelta(0))
    assert report is not None
    assert [e["payment_id"] for e in report["errors"]] == [odd["payment_id"]]
    assert [s["payment_id"] for s in report["settled"]] == [stale["payment_id"]]
    await payment_status(payments, admin, stale["payment_id"], "succeeded")
    unread = (await payments.client.get(f"/api/v1/payments/{odd['payment_id']}", headers=admin)).json()
    assert unread["status"] == "pending"
