"""GET /dashboard, /analytics and /team-performance at 10,000 orders (with their milestones, tasks, payments and
quotes), through the running app, beside the bare SELECT 1 endpoint in the same run. Goal: under 100 ms.

    uv run python bench/orders/bench_dashboard.py [--orders 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import asyncpg
from common import BASE, new_database, remove_database, running_server, token
from loadgen import run_open_loop

SEED = """
INSERT INTO orders (id, school_id, status, package_code, student_count, add_ons, payment_option, currency,
                    total_minor, contact, created_by, created_at, updated_at, team, approved_at, closed_at,
                    timeline_days)
SELECT gen_random_uuid(),
       ('00000000-0000-0000-0000-' || lpad((i % 500)::text, 12, '0'))::uuid,
       (ARRAY['pending','approved','in_progress','data_migration','system_setup','training','testing','go_live',
              'completed','completed','completed','cancelled','on_hold'])[1 + i % 13],
       (ARRAY['foundation','growth','enterprise'])[1 + i % 3], 100 + i % 1500, '[]'::jsonb,
       (ARRAY['full','split','extended'])[1 + i % 3], 'USD', 280000 + (i % 3) * 370000,
       '{"name": "Head"}'::jsonb, 'seed', now() - (i % 365) * interval '1 day', now(),
       ARRAY['member-' || (i % 20), 'member-' || ((i + 7) % 20)],
       now() - (i % 365) * interval '1 day' + interval '2 days',
       CASE WHEN i % 13 IN (8, 9, 10, 11) THEN now() - (i % 365) * interval '1 day' + interval '40 days' END,
       30
FROM generate_series(1, $1) AS i;

INSERT INTO milestones (id, order_id, school_id, sequence, name, due_date, status, completed_at)
SELECT gen_random_uuid(), o.id, o.school_id, s, 'Milestone ' || s, (o.created_at + s * interval '4 days')::date,
       CASE WHEN o.status IN ('completed', 'go_live') OR s <= 3 THEN 'completed' ELSE 'pending' END,
       CASE WHEN o.status IN ('completed', 'go_live') OR s <= 3 THEN o.created_at + s * interval '4 days'
            + (random() * 3 - 1) * interval '1 day' END
FROM orders o CROSS JOIN generate_series(1, 10) AS s WHERE o.status <> 'pending';

INSERT INTO tasks (id, order_id, school_id, title, due_date, status, created_by)
SELECT gen_random_uuid(), o.id, o.school_id, 'Task', (o.created_at + interval '10 days')::date,
       (ARRAY['todo','in_progress','done'])[1 + (random() * 2)::int], 'seed'
FROM orders o CROSS JOIN generate_series(1, 2);

INSERT INTO payments_received (payment_id, order_id, school_id, amount_minor, currency, provider, received_at)
SELECT gen_random_uuid(), o.id, o.school_id, o.total_minor / 2, 'USD', 'paynow', o.created_at + interval '1 day'
FROM orders o WHERE o.status <> 'pending';

INSERT INTO quotes (id, school_id, created_by, body, package_code, total_minor, currency, created_at)
SELECT gen_random_uuid(), o.school_id, 'seed', '{}'::jsonb, o.package_code, o.total_minor, 'USD',
       o.created_at - interval '1 day'
FROM orders o CROSS JOIN generate_series(1, 2);

ANALYZE;
"""


async def seed(url: str, orders: int) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        statements = [s.strip() for s in SEED.split(";") if s.strip()]
        await conn.execute(statements[0], orders)
        for statement in statements[1:]:
            await conn.execute(statement)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second per endpoint")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    name, url = asyncio.run(new_database())
    try:
        asyncio.run(seed(url, args.orders))
        with running_server(url, workers=1) as server:
            base = server.base
            headers = {"Authorization": f"Bearer {token('platform_admin')}"}
            paths = {
                "SELECT 1 (baseline)": "/bench/select1",
                "GET /dashboard": f"{BASE}/dashboard",
                "GET /analytics (month)": f"{BASE}/analytics?from=2000-01-01&to=2100-01-01&group_by=month",
                "GET /analytics (package)": f"{BASE}/analytics?from=2000-01-01&to=2100-01-01&group_by=package",
                "GET /team-performance": f"{BASE}/team-performance",
            }
            results = {
                label: run_open_loop(base, "GET", path, headers, None, args.rate, args.seconds)
                for label, path in paths.items()
            }
    finally:
        asyncio.run(remove_database(name))
    base_p50 = results["SELECT 1 (baseline)"]["p50_ms"] or float("nan")
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"admin views at {args.orders:,} orders, {args.rate:g} req/s for {args.seconds:g} s each (separate process)")
    print(f"load average at the end: {load}")
    print(f"{'endpoint':<28}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'p50/base':>10}")
    for label, r in results.items():
        print(
            f"{label:<28}{r['p50_ms']:>9}{r['p99_ms']:>9}{r['max_ms']:>9}{r['errors']:>8}"
            f"{r['p50_ms'] / base_p50:>10.1f}"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
