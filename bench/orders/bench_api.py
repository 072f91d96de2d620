"""POST /orders (with its outbox write) and GET /orders (school admin, paged) under a fixed arrival rate from a
separate process on loopback, printed beside a bare SELECT 1 endpoint through the same stack in the same run.

    uv run python bench/orders/bench_api.py [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).parent))

import httpx
from common import BASE, new_database, remove_database, run_load, start_server, token

ORDER = {
    "package_code": "growth",
    "student_count": 450,
    "add_ons": ["rush_migration"],
    "payment_option": "split",
    "currency": "USD",
    "contact": {"name": "Head Teacher", "email": "head@school.example"},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    name, url = asyncio.run(new_database())
    server, base = start_server(url)
    try:
        school = str(uuid4())
        headers = {"Authorization": f"Bearer {token('school_admin', school)}"}
        with httpx.Client(base_url=base, headers=headers) as client:
            for _ in range(200):  # a school with history, so the paged list has pages
                client.post(f"{BASE}/orders", json=ORDER).raise_for_status()
        phases = {
            "SELECT 1 (baseline)": ("GET", "/bench/select1", None),
            "GET /orders?limit=20": ("GET", f"{BASE}/orders?limit=20", None),
            "POST /orders": ("POST", f"{BASE}/orders", ORDER),
        }
        results = {}
        for label, (method, path, body) in phases.items():
            results[label] = run_load(base, method, path, headers, body, args.rate, args.seconds)
            print(label, results[label], file=sys.stderr, flush=True)
            if not server.is_alive():
                raise RuntimeError(f"the server died during {label}")
    finally:
        server.terminate()
        server.join(10)
        asyncio.run(remove_database(name))
    print(f"orders API at {args.rate:g} req/s for {args.seconds:g} s each (load from a separate process, loopback)")
    print(f"{'endpoint':<24}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s':>9}{'errors':>8}")
    for label, r in results.items():
        print(f"{label:<24}{r['p50_ms']:>9}{r['p99_ms']:>9}{r['max_ms']:>9}{r['throughput_rps']:>9}{r['errors']:>8}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
