"""An order's whole life through the API, with payments' and the worker's events arriving over the real broker."""

import asyncio
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from contracts.migrations import EntitySummary, JobCompleted, JobProgress
from contracts.money import Money
from contracts.payments import (
    InstallmentOverdue,
    PaymentFailed,
    PaymentPlanCreated,
    PaymentSucceeded,
    PlannedInstallment,
)

from ..conftest import bearer
from .helpers import BASE, ORDER, ORDERS, deliver, eventually, outbox_events, system_rows

pytestmark = pytest.mark.integration

ADMIN = bearer("platform_admin", sub="admin-1")


def _split_plan(order_id: UUID, school_id: UUID) -> PaymentPlanCreated:
    """Payments' plan for ORDER (USD 7,500 split): two halves, at signing and at go-live."""
    half = Money(amount_minor=375_000, currency="USD")
    return PaymentPlanCreated(
        plan_id=uuid4(),
        order_id=order_id,
        school_id=school_id,
        payment_option="split",
        total=Money(amount_minor=750_000, currency="USD"),
        installments=[
            PlannedInstallment(installment_id=uuid4(), sequence=n, label=f"part {n}", amount=half, due=due)
            for n, due in ((1, "at_signing"), (2, "at_go_live"))
        ],
    )


async def _patch_status(client: httpx.AsyncClient, order_id: str, status: str, **extra: Any) -> httpx.Response:
    return await client.patch(f"{ORDERS}/{order_id}/status", json={"status": status, **extra}, headers=ADMIN)


async def test_quote_recommends_prices_and_refuses_the_wrong_package(app_client: httpx.AsyncClient) -> None:
    school = bearer(school_id=uuid4())
    body = {"student_count": 450, "add_ons": ["rush_migration"], "payment_option": "split"}
    quote = await app_client.post(f"{BASE}/quotes", json=body, headers=school)
    assert quote.status_code == 201, quote.text
    q = quote.json()
    assert q["recommended_package"] == "growth" == q["package"]["code"]
    assert q["total"] == {"amount_minor": 750_000, "currency": "USD"}
    assert [i["amount"]["amount_minor"] for i in q["installments"]] == [375_000, 375_000]
    assert q["timeline"]["rush"] is True

    wrong = await app_client.post(f"{BASE}/quotes", json={**body, "package_code": "foundation"}, headers=school)
    assert wrong.status_code == 422
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["fitting_package"] == "growth"
    assert "growth package fits 450 students" in wrong.json()["detail"]


async def test_zwl_quote_uses_the_admin_maintained_rate(app_client: httpx.AsyncClient) -> None:
    school = bearer(school_id=uuid4())
    body = {"package_code": "foundation", "student_count": 100, "payment_option": "full", "currency": "ZWL"}
    refused = await app_client.post(f"{BASE}/quotes", json=body, headers=school)
    assert refused.status_code == 422
    assert refused.json()["code"] == "missing_exchange_rate"
    not_allowed = await app_client.post(
        f"{BASE}/exchange-rates", json={"currency": "ZWL", "rate": "30", "effective_date": "2020-01-01"}, headers=school
    )
    assert not_allowed.status_code == 403
    rate = {"currency": "ZWL", "rate": "26.5", "effective_date": "2020-01-01"}
    assert (await app_client.post(f"{BASE}/exchange-rates", json=rate, headers=ADMIN)).status_code == 201
    quote = (await app_client.post(f"{BASE}/quotes", json=body, headers=school)).json()
    assert quote["exchange_rate"]["rate"] == "26.500000"
    assert quote["lines"][0]["amount"] == {"amount_minor": 7_420_000, "currency": "ZWL"}
    assert quote["total"]["amount_minor"] == 7_420_000 - 371_000


async def test_a_retried_create_with_the_same_idempotency_key_returns_the_same_order(
    app_client: httpx.AsyncClient,
) -> None:
    school_id = uuid4()
    headers = {**bearer(school_id=school_id), "Idempotency-Key": "create-1"}
    first = await app_client.post(ORDERS, json=ORDER, headers=headers)
    second = await app_client.post(ORDERS, json=ORDER, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    count = await system_rows(app_client, "SELECT count(*) AS n FROM orders WHERE school_id = :s", s=school_id)
    assert count[0]["n"] == 1
    events = await outbox_events(app_client, first.json()["id"])
    assert [e["routing_key"] for e in events] == ["orders.order_created.v1"]
    data = events[0]["body"]["data"]
    assert [i["amount"]["amount_minor"] for i in data["installments"]] == [375_000, 375_000]
    assert data["contact"]["email"] == "head@school.example"


async def test_an_order_from_sale_to_completion(app_client: httpx.AsyncClient) -> None:
    school_id = uuid4()
    school = bearer(school_id=school_id)
    order = (await app_client.post(ORDERS, json=ORDER, headers=school)).json()
    oid = order["id"]
    assert order["allowed_moves"] == ["approved", "cancelled", "on_hold"]

    skipped = await _patch_status(app_client, oid, "in_progress")
    assert skipped.status_code == 409
    assert skipped.json()["allowed"] == ["approved", "cancelled", "on_hold"]
    assert (
        await app_client.patch(f"{ORDERS}/{oid}/status", json={"status": "approved"}, headers=school)
    ).status_code == 403

    approved = await _patch_status(app_client, oid, "approved")
    assert approved.status_code == 200, approved.text
    assert [m["name"] for m in approved.json()["milestones"]][:2] == ["Project Kickoff", "Data Collection"]
    assert len(approved.json()["milestones"]) == 10

    guarded = await _patch_status(app_client, oid, "in_progress")
    assert guarded.status_code == 409
    assert len(guarded.json()["unmet"]) == 2

    team = await app_client.post(
        f"{ORDERS}/{oid}/team", json={"members": ["tm-ann", "tm-bob"], "lead": "tm-ann"}, headers=ADMIN
    )
    assert team.status_code == 200
    assert team.json()["team"] == ["tm-ann", "tm-bob"]

    plan = _split_plan(UUID(oid), school_id)
    installments = plan.installments
    await deliver(app_client, plan)

    async def pay(sequence: int) -> None:
        await deliver(
            app_client,
            PaymentSucceeded(
                payment_id=uuid4(),
                order_id=UUID(oid),
                school_id=school_id,
                installment_id=installments[sequence - 1].installment_id,
                installment_sequence=sequence,
                amount=installments[sequence - 1].amount,
                provider="paynow",
                provider_reference=f"ref-{sequence}",
            ),
        )

        async def paid() -> bool:
            payments = (await app_client.get(f"{ORDERS}/{oid}", headers=school)).json()["payments"]
            return any(p["sequence"] == sequence and p["status"] == "paid" for p in payments)

        await eventually(paid)

    await pay(1)

    pg = {
        "kind": "postgres",
        "name": "legacy SIS",
        "dsn": "postgresql://legacy:s3cret@db.school/sis",
        "entity": "students",
    }
    registered = await app_client.post(f"{ORDERS}/{oid}/data-sources", json=pg, headers=school)
    assert registered.status_code == 201, registered.text
    assert "s3cret" not in registered.text
    stored = await system_rows(app_client, "SELECT secret FROM data_sources WHERE order_id = :o", o=UUID(oid))
    assert b"s3cret" not in bytes(stored[0]["secret"])
    upload = await app_client.post(
        f"{ORDERS}/{oid}/data-sources",
        files={"file": ("fees.csv", b"student,amount\nA,10\nB,20\n", "text/csv")},
        data={"name": "fees export", "entity": "fees"},
        headers=school,
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["estimated_rows"] == 2

    started = await _patch_status(app_client, oid, "in_progress")
    assert started.status_code == 200, started.text
    assert (await _patch_status(app_client, oid, "data_migration")).status_code == 200
    # paused and resumed mid-migration: the job already started is not started again
    assert (await _patch_status(app_client, oid, "on_hold")).status_code == 200
    assert (await _patch_status(app_client, oid, "data_migration")).status_code == 200
    events = await outbox_events(app_client, oid)
    start_jobs = [e for e in events if e["routing_key"] == "migrations.cmd.start_job.v1"]
    assert len(start_jobs) == 1
    start_job = start_jobs[0]["body"]["data"]
    assert sorted(s["kind"] for s in start_job["data_sources"]) == ["csv", "postgres"]
    assert all("s3cret" not in s["location"] for s in start_job["data_sources"])

    job_id = UUID(start_job["job_id"])
    await deliver(
        app_client,
        JobProgress(job_id=job_id, order_id=UUID(oid), phase="load", rows_done=50, rows_total=100, percent=50),
    )
    await deliver(
        app_client,
        JobCompleted(
            job_id=job_id,
            order_id=UUID(oid),
            rows_total=100,
            rows_migrated=98,
            rows_rejected=2,
            entities=[EntitySummary(entity="students", source=100, migrated=98, rejected=2, success_rate=0.98)],
        ),
    )

    async def job_done() -> dict[str, Any] | None:
        detail = (await app_client.get(f"{ORDERS}/{oid}", headers=school)).json()
        job = detail["migration_job"]
        return detail if job and job["status"] == "completed" else None

    detail = await eventually(job_done)
    assert detail["migration_job"]["report"]["final"]["rows_rejected"] == 2
    assert detail["milestones"][4]["status"] == "completed"  # Data Migration
    assert detail["progress_percent"] == 10

    for status in ["system_setup", "training", "testing", "go_live"]:
        assert (await _patch_status(app_client, oid, status)).status_code == 200
    unpaid = await _patch_status(app_client, oid, "completed")
    assert unpaid.status_code == 409
    assert "installment" in unpaid.json()["detail"]
    await pay(2)
    done = await _patch_status(app_client, oid, "completed")
    assert done.status_code == 200
    assert done.json()["allowed_moves"] == []

    changes = [e for e in await outbox_events(app_client, oid) if e["routing_key"] == "orders.order_status_changed.v1"]
    assert [c["body"]["data"]["to_status"] for c in changes][-1] == "completed"
    assert len(changes) == 10  # eight steps, and the pause and resume in the migration

    audit = await app_client.get(f"{BASE}/audit", params={"entity": "order", "id": oid}, headers=ADMIN)
    assert audit.status_code == 200
    actions = [a["action"] for a in audit.json()]
    assert actions.count("status_change") == 10
    assert {"create", "assign_team"} <= set(actions)
    assert audit.json()[0]["after"]["status"] == "completed"
    assert (await app_client.get(f"{BASE}/audit", headers=school)).status_code == 403


async def test_team_members_complete_milestones_and_work_tasks(app_client: httpx.AsyncClient) -> None:
    school_id = uuid4()
    oid = (await app_client.post(ORDERS, json=ORDER, headers=bearer(school_id=school_id))).json()["id"]
    await _patch_status(app_client, oid, "approved")
    await app_client.post(f"{ORDERS}/{oid}/team", json={"members": ["tm-cy"]}, headers=ADMIN)
    member = bearer("team_member", sub="tm-cy")
    milestones = (await app_client.get(f"{ORDERS}/{oid}/milestones", headers=member)).json()
    done = await app_client.patch(
        f"{ORDERS}/{oid}/milestones/{milestones[0]['id']}", json={"status": "completed"}, headers=member
    )
    assert done.status_code == 200, done.text
    assert done.json()["completed_by"] == "tm-cy"
    again = await app_client.patch(
        f"{ORDERS}/{oid}/milestones/{milestones[0]['id']}", json={"status": "completed"}, headers=member
    )
    assert again.status_code == 409
    event = [e for e in await outbox_events(app_client, oid) if e["routing_key"] == "orders.milestone_completed.v1"]
    assert event[0]["body"]["data"]["progress_percent"] == 10

    task = await app_client.post(
        f"{ORDERS}/{oid}/tasks", json={"title": "Collect fee ledgers", "due_date": "2020-01-01"}, headers=ADMIN
    )
    assert task.status_code == 201
    updated = await app_client.put(
        f"{BASE}/tasks/{task.json()['id']}", json={"assignee": "tm-cy", "status": "in_progress"}, headers=member
    )
    assert updated.status_code == 200
    assert (updated.json()["assignee"], updated.json()["status"]) == ("tm-cy", "in_progress")
    status_by_member = await app_client.patch(f"{ORDERS}/{oid}/status", json={"status": "cancelled"}, headers=member)
    assert status_by_member.status_code == 403

    dashboard = (await app_client.get(f"{BASE}/dashboard", headers=ADMIN)).json()
    assert dashboard["overdue_tasks"] >= 1
    assert any(u["member"] == "tm-cy" for u in dashboard["team_utilisation"])
    performance = (await app_client.get(f"{BASE}/team-performance", headers=ADMIN)).json()
    assert next(p for p in performance if p["member"] == "tm-cy")["on_time_milestone_rate"] == 1.0
    analytics = await app_client.get(
        f"{BASE}/analytics", params={"from": "2000-01-01", "to": "2100-01-01", "group_by": "package"}, headers=ADMIN
    )
    assert analytics.status_code == 200, analytics.text
    growth = next(g for g in analytics.json()["groups"] if g["key"] == "growth")
    assert growth["orders"] >= 1


async def test_a_revised_package_does_not_change_orders_already_sold(app_client: httpx.AsyncClient) -> None:
    school = bearer(school_id=uuid4())
    before = (
        await app_client.post(
            ORDERS, json={**ORDER, "package_code": "enterprise", "student_count": 900, "add_ons": []}, headers=school
        )
    ).json()
    revised = await app_client.put(f"{BASE}/care-packages/enterprise", json={"price_minor": 1_600_000}, headers=ADMIN)
    assert revised.status_code == 200
    assert revised.json()["version"] == 2
    after = (
        await app_client.post(
            ORDERS, json={**ORDER, "package_code": "enterprise", "student_count": 900, "add_ons": []}, headers=school
        )
    ).json()
    assert (before["package_version"], before["total"]["amount_minor"]) == (1, 1_500_000)
    assert (after["package_version"], after["total"]["amount_minor"]) == (2, 1_600_000)
    kept = (await app_client.get(f"{ORDERS}/{before['id']}", headers=school)).json()
    assert kept["total"]["amount_minor"] == 1_500_000
    history = (await app_client.get(f"{BASE}/care-packages/enterprise", headers=school)).json()
    assert [p["version"] for p in history] == [1, 2]
    refused = await app_client.put(f"{BASE}/care-packages/enterprise", json={"price_minor": 1}, headers=school)
    assert refused.status_code == 403


async def test_installment_events_that_overtake_the_plan_are_not_lost(app_client: httpx.AsyncClient) -> None:
    school_id = uuid4()
    school = bearer(school_id=school_id)
    oid = UUID((await app_client.post(ORDERS, json=ORDER, headers=school)).json()["id"])
    plan = _split_plan(oid, school_id)
    first, second = (i.installment_id for i in plan.installments)
    money = plan.installments[0].amount
    # Each event type has its own queue: the plan can come last (held in a retry queue, say).
    await deliver(
        app_client,
        PaymentFailed(
            payment_id=uuid4(),
            order_id=oid,
            school_id=school_id,
            installment_id=first,
            amount=money,
            provider="ecocash",
            reason="insufficient funds",
        ),
    )
    await deliver(
        app_client,
        InstallmentOverdue(
            installment_id=second,
            order_id=oid,
            school_id=school_id,
            sequence=2,
            amount=money,
            due_date=date(2026, 1, 1),
            days_overdue=3,
        ),
    )
    await deliver(app_client, plan)

    async def statuses() -> list[str] | None:
        payments = (await app_client.get(f"{ORDERS}/{oid}", headers=school)).json()["payments"]
        found = [p["status"] for p in sorted(payments, key=lambda p: p["sequence"])]
        return found if found == ["failed", "overdue"] else None

    assert await eventually(statuses, attempts=200) == ["failed", "overdue"]


async def test_an_updated_assessment_is_stored_whole_as_at_creation(app_client: httpx.AsyncClient) -> None:
    school = bearer(school_id=uuid4())
    oid = (await app_client.post(ORDERS, json=ORDER, headers=school)).json()["id"]
    assessment = {"school_name": "Hill School", "student_count": 420}
    updated = await app_client.put(f"{ORDERS}/{oid}", json={"assessment": assessment}, headers=school)
    assert updated.status_code == 200, updated.text
    stored = (await app_client.get(f"{ORDERS}/{oid}", headers=school)).json()["assessment"]
    assert stored["staff_count"] == 0
    assert stored["modules"] == stored["data_sources"] == []


async def test_two_admins_adding_the_same_days_rate_get_one_201_and_409s(app_client: httpx.AsyncClient) -> None:
    day = date(1900, 1, 1) + timedelta(days=uuid4().int % 30_000)  # a day no other test uses
    rate = {"currency": "ZWL", "rate": "27", "effective_date": day.isoformat()}
    answers = await asyncio.gather(
        *(app_client.post(f"{BASE}/exchange-rates", json=rate, headers=ADMIN) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
