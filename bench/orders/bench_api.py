"""POST /orders (with its outbox write) and GET /orders (school admin, paged), printed beside a bare SELECT 1
endpoint through the same stack in the same run, with the load in a separate process on loopback, two ways:

- open loop: requests sent at a fixed arrival rate (default 200 req/s) by a light client (loadgen.py) that
  measures each from its scheduled send time: p50/p99 at that rate, and the rate actually achieved;
- wrk: a fixed number of connections sending back to back: the highest rate the stack sustains, and its
  latency there (wrk2 is not available; `make bench-tools` installs wrk).

The app runs as deployed: ORDERS_HTTP_WORKERS worker processes (default 2, one per core), each a whole
replica whose outbox relay publishes the orders' events to a sink queue standing in for their consumers.

    uv run python bench/orders/bench_api.py [--rate 200] [--seconds 5] [--connections 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).parent))

import httpx
from common import BASE, Server, new_database, remove_database, running_server, token
from loadgen import run_open_loop, run_wrk

ORDER = {
    "package_code": "growth",
    "student_count": 450,
    "add_ons": ["rush_migration"],
    "payment_option": "split",
    "currency": "USD",
    "contact": {"name": "Head Teacher", "email": "head@school.example"},
}


def _measure(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    school = str(uuid4())
    headers = {"Authorization": f"Bearer {token('school_admin', school)}"}
    with httpx.Client(base_url=server.base, headers=headers) as client:
        for _ in range(200):  # a school with history, so the paged list has pages
            client.post(f"{BASE}/orders", json=ORDER).raise_for_status()
    phases = {
        "SELECT 1 (baseline)": ("GET", "/bench/select1", None),
        "GET /orders?limit=20": ("GET", f"{BASE}/orders?limit=20", None),
        "POST /orders": ("POST", f"{BASE}/orders", ORDER),
    }
    fixed, closed = {}, {}
    for label, (method, path, body) in phases.items():
        cpu = server.cpu_seconds()
        fixed[label] = run_open_loop(server.base, method, path, headers, body, args.rate, args.seconds)
        # Warm-up requests included: 20 per phase, against 1,000 measured at the defaults.
        served = fixed[label]["requests"] + 20
        fixed[label]["server_cpu_ms"] = round(1000 * (server.cpu_seconds() - cpu) / served, 2)
        print(label, "open loop", fixed[label], file=sys.stderr, flush=True)
        closed[label] = run_wrk(
            server.base, method, path, headers, body, connections=args.connections, seconds=args.seconds
        )
        print(label, "wrk", closed[label], file=sys.stderr, flush=True)
        if not server.is_alive():
            raise RuntimeError(f"the server died during {label}")
    return fixed, closed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="open loop: requests per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="per endpoint and load kind")
    parser.add_argument("--connections", type=int, default=8, help="wrk: connections kept busy")
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (ORDERS_HTTP_WORKERS; one per core)"
    )
    args = parser.parse_args()

    load_before = Path("/proc/loadavg").read_text().split()[0]
    name, url = asyncio.run(new_database())
    try:
        with running_server(url, workers=args.workers) as server:
            fixed, closed = _measure(server, args)
    finally:
        asyncio.run(remove_database(name))
    load_after = Path("/proc/loadavg").read_text().split()[0]
    baseline = fixed["SELECT 1 (baseline)"]
    print(
        f"orders API, load from a separate process on loopback; load average {load_before} before, {load_after} after"
    )
    print(f"open loop at {args.rate:g} req/s for {args.seconds:g} s each (latency from the scheduled send time;")
    print(
        f"app cpu ms = CPU per request of the app's {args.workers} worker process(es), relay included, not PostgreSQL)"
    )
    columns = ("p50 ms", "p99 ms", "max ms", "req/s", "errors", "p99/base", "client cpu", "app cpu ms")
    print(f"{'endpoint':<24}" + "".join(f"{c:>11}" for c in columns))
    for label, r in fixed.items():
        ratio = r["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] else float("nan")
        print(
            f"{label:<24}{r['p50_ms']:>11}{r['p99_ms']:>11}{r['max_ms']:>11}{r['throughput_rps']:>11}{r['errors']:>11}"
            f"{ratio:>11.2f}{r['client_cpu_percent']:>10}%{r['server_cpu_ms']:>11}"
        )
    if all(closed.values()):
        top = closed["SELECT 1 (baseline)"]["throughput_rps"]  # type: ignore[index]
        print(f"wrk, {args.connections} connections for {args.seconds:g} s each (closed loop: the sustainable rate)")
        print(f"{'endpoint':<24}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}{'rate/base':>11}")
        for label, w in closed.items():
            assert w is not None
            print(
                f"{label:<24}{w['p50_ms']:>9}{w['p99_ms']:>9}{w['throughput_rps']:>9}{w['errors']:>8}"
                f"{w['throughput_rps'] / top if top else float('nan'):>11.2f}"
            )
    else:
        print("wrk not installed (make bench-tools): closed-loop figures skipped")
    print(json.dumps({"open_loop": fixed, "wrk": closed, "loadavg": [load_before, load_after]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
