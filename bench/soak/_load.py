"""The soak's load generator, a separate process: mixed traffic from a few threads, every request's
latency recorded per endpoint (JSON lines), and the orders it placed written out for the ledger."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.faults.harness import Workload
from tests.support.system import System

_IDS = re.compile(r"/(pi_[A-Za-z0-9_]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def endpoint(request: httpx.Request) -> str:
    return f"{request.method} {_IDS.sub('/{id}', request.url.path)}"


def main(config_path: str) -> None:
    config: dict[str, Any] = json.loads(Path(config_path).read_text())
    with Path(config["latencies"]).open("a", buffering=1) as out:
        _run(config, out)


def _run(config: dict[str, Any], out: Any) -> None:
    system = System(workdir=Path(config["workdir"]), services=config["services"], ports=config["ports"])
    lock = threading.Lock()
    stop_at = time.monotonic() + float(config["seconds"])
    workloads = [Workload(system, pay_every=2) for _ in range(int(config["threads"]))]

    def record(response: httpx.Response) -> None:
        response.read()  # `elapsed` is known once the body is in
        elapsed = response.elapsed.total_seconds() * 1000
        line = json.dumps(
            {"t": time.time(), "endpoint": endpoint(response.request), "status": response.status_code, "ms": elapsed}
        )
        with lock:
            out.write(line + "\n")

    def drive(workload: Workload) -> None:
        with httpx.Client(timeout=30, event_hooks={"response": [record]}) as client:
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                try:
                    workload.step(client, pay=n % workload.pay_every == 0)
                except httpx.HTTPError as exc:
                    workload.refused[type(exc).__name__] += 1
                    time.sleep(0.2)
                # a reading client too: the school looks at its order list now and then
                if workload.placed and n % 3 == 0:
                    last = workload.placed[-1]
                    client.get(
                        f"{system.url('orders')}/api/v1/migration-services/orders",
                        headers={"Authorization": f"Bearer {last.school_token}"},
                    )

    threads = [threading.Thread(target=drive, args=(w,)) for w in workloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    placed = [vars(p) for w in workloads for p in w.placed]
    errors = [e for w in workloads for e in w.server_errors]
    Path(config["placed"]).write_text(json.dumps({"placed": placed, "server_errors": errors}))


if __name__ == "__main__":
    main(sys.argv[1])
