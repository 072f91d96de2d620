"""`make soak`: ten minutes of mixed load from a separate process against the whole system.

Samples every few seconds: throughput, memory (RSS) of every service, broker queue depths; at the
end p99 latency per endpoint, the ledger (lost / doubled / leaked) and a plot in docs/soak.png.
SOAK_SECONDS shortens the run (e.g. 90 for a quick look); SOAK_THREADS sets the load's concurrency,
SOAK_SETTLE_SECONDS the budget of the settle phase after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.soak.report import Sample, memory_growth, percentiles, plot, write_markdown
from tests.faults.harness import Placed, namespace_queue_depths, settle_and_check
from tests.support.system import ROOT, running_system

SERVICES = ["orders", "payments", "notifications"]
# The SMS providers' hourly quotas (2,500 SMS/h together) model the real contracts; the soak sends more
# than that in ten minutes, and a deferred-by-quota SMS is correct behaviour, not a loss. The soak
# measures the platform, so the sandbox providers get quotas it cannot reach.
UNLIMITED = str(10**9)
PROVIDER_QUOTAS = {
    f"NOTIFICATIONS_{p}_RATE_PER_HOUR": UNLIMITED for p in ("TELONE", "ECONET", "GENERIC_SMS", "WHATSAPP")
}
SAMPLE_SECONDS = 5.0
# the whole settle phase after the load (every wait inside it shares this budget); SOAK_SETTLE_SECONDS
SETTLE_SECONDS = 600.0
# One load thread (~10 requests/s, ~8 notifications per order) is what notifications keeps up with on
# the 2-core machine; four outran its sending (a backlog of 12,000 messages after ten minutes).
THREADS = 1


def _rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    threads = int(os.environ.get("SOAK_THREADS", str(THREADS)))
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    with running_system(work / "system", SERVICES, **PROVIDER_QUOTAS) as system:
        config = {
            "workdir": str(work / "system"),
            "services": SERVICES,
            "ports": system.ports,
            "seconds": seconds,
            "threads": threads,
            "latencies": str(work / "latencies.jsonl"),
            "placed": str(work / "placed.json"),
        }
        (work / "config.json").write_text(json.dumps(config))
        load = subprocess.Popen([sys.executable, "-m", "bench.soak._load", str(work / "config.json")], cwd=ROOT)
        samples: list[Sample] = []
        started = time.monotonic()
        depths: dict[str, tuple[int, int]] = {}
        while load.poll() is None:
            try:
                depths = namespace_queue_depths(system)
            except (subprocess.SubprocessError, OSError) as exc:
                # a broker that cannot answer is itself a finding: say so, keep the last depths, go on
                print(f"[soak] rabbitmqctl list_queues failed: {exc}", flush=True)
            samples.append(
                Sample(
                    t=time.monotonic() - started,
                    requests=_count_lines(work / "latencies.jsonl"),
                    rss_mb={n: _rss_mb(p.popen.pid) for n, p in system.processes.items() if p.popen},
                    queue_depth=sum(r + u for q, (r, u) in depths.items() if not q.endswith(".parking")),
                    parked=sum(r + u for q, (r, u) in depths.items() if q.endswith(".parking")),
                )
            )
            print(f"[soak] t={samples[-1].t:5.0f}s {samples[-1].describe()}", flush=True)
            time.sleep(SAMPLE_SECONDS)
        if load.returncode != 0:
            print(f"[soak] FAILED: the load process exited with {load.returncode}", flush=True)
            return 1
        latencies = [json.loads(line) for line in (work / "latencies.jsonl").read_text().splitlines()]
        docs = ROOT / "docs"
        # the figures of the load are kept whatever the settle phase finds
        plot(samples, latencies, docs / "soak.png", seconds)
        result = json.loads((work / "placed.json").read_text())
        placed = [Placed(**p) for p in result["placed"]]
        settle_seconds = float(os.environ.get("SOAK_SETTLE_SECONDS", SETTLE_SECONDS))
        print(f"[soak] load done ({len(placed)} orders); settling, at most {settle_seconds:.0f} s", flush=True)
        settle_started = time.monotonic()
        ledger = settle_and_check(system, placed, timeout=settle_seconds)
        print(f"[soak] settled in {time.monotonic() - settle_started:.0f} s", flush=True)
    table = percentiles(latencies)
    growth = memory_growth(samples)
    summary = write_markdown(docs / "soak-latest.md", seconds, threads, samples, table, growth, ledger, result)
    print(summary)
    print(ledger.details())
    if ledger.unsettled:
        print(f"[soak] FAILED: settle phase out of its {settle_seconds:.0f} s in: {', '.join(ledger.unsettled)}")
    ok = (
        ledger.lost == ledger.doubled == ledger.leaked == 0
        and not ledger.unsettled
        and not result["server_errors"]
        and all(g < 0.25 for g in growth.values())
    )
    return 0 if ok else 1


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for _ in f)


if __name__ == "__main__":
    sys.exit(main())
