"""The admin views read counters kept on writes; they must answer exactly what the plain aggregates answer."""

from uuid import UUID, uuid4

import httpx
import pytest

from ..conftest import bearer
from .helpers import BASE, ORDER, ORDERS, system_rows

pytestmark = pytest.mark.integration

ADMIN = bearer("platform_admin", sub="admin-views")

# /team-performance as it was computed before migration 0004: every milestone aggregated on each request.
REFERENCE = """
WITH per_order AS (
    SELECT order_id,
           count(*) FILTER (WHERE status = 'completed') AS done,
           count(*) FILTER (WHERE status = 'completed' AND completed_at::date <= due_date) AS on_time
    FROM milestones GROUP BY order_id
), membership AS (
    SELECT m.member, o.id, o.status, o.approved_at, o.closed_at
    FROM orders o CROSS JOIN LATERAL unnest(o.team) AS m(member)
)
SELECT ms.member,
       count(*) FILTER (WHERE ms.status IN ('approved', 'data_migration', 'go_live', 'in_progress', 'on_hold',
                                            'system_setup', 'testing', 'training')) AS active_orders,
       count(*) FILTER (WHERE ms.status = 'completed') AS completed_orders,
       round(sum(p.on_time)::numeric / nullif(sum(p.done), 0), 4)::float AS on_time_milestone_rate,
       round(avg(extract(epoch FROM ms.closed_at - ms.approved_at) / 86400)
             FILTER (WHERE ms.status = 'completed' AND ms.approved_at IS NOT NULL), 1)::float AS average_project_days
FROM membership ms LEFT JOIN per_order p ON p.order_id = ms.id
GROUP BY ms.member ORDER BY ms.member
"""

STATS_DRIFT = """
SELECT count(*) AS n
FROM order_milestone_stats s
FULL JOIN (SELECT order_id, count(*) AS milestones, count(*) FILTER (WHERE status = 'completed') AS done,
                  count(*) FILTER (WHERE status = 'completed' AND completed_at::date <= due_date) AS on_time
           FROM milestones GROUP BY order_id) m USING (order_id)
WHERE (coalesce(s.milestones, 0), coalesce(s.done, 0), coalesce(s.on_time, 0))
      IS DISTINCT FROM (coalesce(m.milestones, 0), coalesce(m.done, 0), coalesce(m.on_time, 0))
"""


async def _approved_order(client: httpx.AsyncClient, members: list[str]) -> str:
    oid: str = (await client.post(ORDERS, json=ORDER, headers=bearer(school_id=uuid4()))).json()["id"]
    assert (await client.patch(f"{ORDERS}/{oid}/status", json={"status": "approved"}, headers=ADMIN)).status_code == 200
    assert (await client.post(f"{ORDERS}/{oid}/team", json={"members": members}, headers=ADMIN)).status_code == 200
    return oid


async def test_team_performance_equals_the_aggregate_over_every_milestone(app_client: httpx.AsyncClient) -> None:
    first = await _approved_order(app_client, ["av-ana", "av-ben"])
    second = await _approved_order(app_client, ["av-ben"])
    await _approved_order(app_client, ["av-cy"])  # milestones, none completed
    member = bearer("team_member", sub="av-ben")
    for oid, count in ((first, 3), (second, 1)):
        milestones = (await app_client.get(f"{ORDERS}/{oid}/milestones", headers=member)).json()
        for milestone in milestones[:count]:
            done = await app_client.patch(
                f"{ORDERS}/{oid}/milestones/{milestone['id']}", json={"status": "completed"}, headers=member
            )
            assert done.status_code == 200, done.text
    # One completion late: the counters follow an update made outside the API too (they are kept by triggers).
    late = await system_rows(
        app_client,
        "UPDATE milestones SET due_date = completed_at::date - 1 WHERE order_id = :o AND sequence = 1 RETURNING id",
        o=UUID(first),
    )
    assert len(late) == 1

    assert (await system_rows(app_client, STATS_DRIFT))[0]["n"] == 0
    answer = await app_client.get(f"{BASE}/team-performance", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert answer.json() == await system_rows(app_client, REFERENCE)
    by_member = {p["member"]: p for p in answer.json()}
    assert by_member["av-ana"]["on_time_milestone_rate"] == round(2 / 3, 4)
    assert by_member["av-ben"]["on_time_milestone_rate"] == 0.75
    assert by_member["av-cy"]["on_time_milestone_rate"] is None


OLD_ANALYTICS = {
    "orders": "SELECT {key} AS bucket, o.currency, count(*) AS orders, sum(o.total_minor)::bigint AS value"
    " FROM orders o GROUP BY 1, 2",
    "quotes": "SELECT {qkey} AS bucket, count(*) AS quotes FROM quotes q GROUP BY 1",
    "revenue": "SELECT {rkey} AS bucket, r.currency, sum(r.amount_minor)::bigint AS value"
    " FROM payments_received r JOIN orders o ON o.id = r.order_id GROUP BY 1, 2",
}


async def test_dashboard_and_analytics_equal_the_plain_aggregates(app_client: httpx.AsyncClient) -> None:
    school_id = uuid4()
    school = bearer(school_id=school_id)
    oid = await _approved_order(app_client, ["av-dee"])
    await app_client.post(ORDERS, json=ORDER, headers=school)
    cancelled = (await app_client.post(ORDERS, json={**ORDER, "add_ons": []}, headers=school)).json()["id"]
    await app_client.patch(f"{ORDERS}/{cancelled}/status", json={"status": "cancelled"}, headers=ADMIN)
    body = {"student_count": 450, "payment_option": "full"}
    assert (await app_client.post(f"{BASE}/quotes", json=body, headers=school)).status_code == 201
    await system_rows(
        app_client,
        "INSERT INTO payments_received (payment_id, order_id, school_id, amount_minor, currency, provider,"
        " received_at) SELECT :p, id, school_id, 375000, currency, 'paynow', now() FROM orders WHERE id = :o"
        " RETURNING payment_id",
        p=uuid4(),
        o=UUID(oid),
    )

    dashboard = (await app_client.get(f"{BASE}/dashboard", headers=ADMIN)).json()
    by_status = await system_rows(app_client, "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY 1")
    assert dashboard["orders_by_status"] == {r["status"]: r["n"] for r in by_status}
    assert dashboard["average_order_value"] == await system_rows(
        app_client,
        "SELECT currency, round(avg(total_minor))::bigint AS amount_minor FROM orders"
        " WHERE status <> 'cancelled' GROUP BY currency ORDER BY currency",
    )
    assert dashboard["revenue_this_month"] == [{"currency": "USD", "amount_minor": 375_000}]

    for group_by, key, qkey, rkey in (
        (
            "month",
            *(
                f"to_char(date_trunc('month', {t}), 'YYYY-MM')"
                for t in ("o.created_at", "q.created_at", "r.received_at")
            ),
        ),
        ("package", "o.package_code", "q.package_code", "o.package_code"),
    ):
        answer = await app_client.get(
            # to the calendar's last day: a window without an upper end
            f"{BASE}/analytics",
            params={"from": "2000-01-01", "to": "9999-12-31", "group_by": group_by},
            headers=ADMIN,
        )
        assert answer.status_code == 200, answer.text
        groups = {g["key"]: g for g in answer.json()["groups"]}
        sql = {name: q.format(key=key, qkey=qkey, rkey=rkey) for name, q in OLD_ANALYTICS.items()}
        expected: dict[str, dict[str, object]] = {}
        for r in await system_rows(app_client, sql["orders"]):
            g = expected.setdefault(r["bucket"], {"orders": 0, "quotes": 0, "order_value": [], "revenue": []})
            g["orders"] = int(g["orders"]) + r["orders"]  # type: ignore[call-overload]
            g["order_value"].append({"amount_minor": r["value"], "currency": r["currency"]})  # type: ignore[attr-defined]
        for r in await system_rows(app_client, sql["quotes"]):
            expected.setdefault(r["bucket"], {"orders": 0, "quotes": 0, "order_value": [], "revenue": []})
            expected[r["bucket"]]["quotes"] = r["quotes"]
        for r in await system_rows(app_client, sql["revenue"]):
            expected[r["bucket"]]["revenue"].append({"amount_minor": r["value"], "currency": r["currency"]})  # type: ignore[attr-defined]
        assert set(groups) == set(expected), group_by
        for bucket, want in expected.items():
            got = groups[bucket]
            assert (got["orders"], got["quotes"]) == (want["orders"], want["quotes"]), (group_by, bucket)
            assert sorted(got["order_value"], key=str) == sorted(want["order_value"], key=str)  # type: ignore[call-overload]
            assert sorted(got["revenue"], key=str) == sorted(want["revenue"], key=str)  # type: ignore[call-overload]
        assert any(g["revenue"] for g in groups.values())
