"""The soak's figures: samples over time, latency percentiles per endpoint, memory growth, the plot."""

from __future__ import annotations

import collections
import datetime as dt
import os
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from tests.faults.harness import Ledger


@dataclass
class Sample:
    t: float
    requests: int
    rss_mb: dict[str, float] = field(default_factory=dict)
    queue_depth: int = 0
    parked: int = 0

    def describe(self) -> str:
        memory = " ".join(f"{n}={mb:.0f}MB" for n, mb in self.rss_mb.items())
        return f"requests={self.requests} queued={self.queue_depth} parked={self.parked} {memory}"


def percentiles(latencies: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    by_endpoint: dict[str, list[float]] = collections.defaultdict(list)
    for row in latencies:
        by_endpoint[row["endpoint"]].append(float(row["ms"]))
    table = {}
    for name, values in sorted(by_endpoint.items()):
        values.sort()
        table[name] = {
            "count": len(values),
            "p50": values[len(values) // 2],
            "p99": values[min(len(values) - 1, int(len(values) * 0.99))],
        }
    return table


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def memory_growth(samples: list[Sample]) -> dict[str, float]:
    """Relative growth of each service's mean RSS from the second quarter of the run to the last:
    the first quarter is warm-up (imports, pools, caches filling)."""
    if len(samples) < 8:
        return {}
    quarter = len(samples) // 4
    growth = {}
    for name in samples[0].rss_mb:
        early = [s.rss_mb.get(name, 0.0) for s in samples[quarter : 2 * quarter]]
        late = [s.rss_mb.get(name, 0.0) for s in samples[-quarter:]]
        mean_early, mean_late = sum(early) / len(early), sum(late) / len(late)
        growth[name] = (mean_late - mean_early) / mean_early if mean_early else 0.0
    return growth


def plot(samples: list[Sample], latencies: list[dict[str, Any]], path: Path, seconds: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    t = [s.t for s in samples]
    rate = [0.0] + [(b.requests - a.requests) / (b.t - a.t) if b.t > a.t else 0.0 for a, b in pairwise(samples)]
    axes[0][0].plot(t, rate)
    axes[0][0].set_title("throughput (requests/s)")
    for name in samples[0].rss_mb if samples else []:
        axes[0][1].plot(t, [s.rss_mb.get(name, 0.0) for s in samples], label=name)
    axes[0][1].set_title("memory RSS per service (MB)")
    axes[0][1].legend()
    axes[1][0].plot(t, [s.queue_depth for s in samples], label="queued (not parking)")
    axes[1][0].plot(t, [s.parked for s in samples], label="parked")
    axes[1][0].set_title("broker queue depth (messages)")
    axes[1][0].legend()
    if latencies:
        start = min(r["t"] for r in latencies)
        windows: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
        for r in latencies:
            windows[(r["endpoint"], int((r["t"] - start) // 30))].append(float(r["ms"]))
        for name in sorted({e for e, _ in windows}):
            points = sorted((w * 30, _p99(v)) for (e, w), v in windows.items() if e == name)
            axes[1][1].plot([p[0] for p in points], [p[1] for p in points], label=name)
        axes[1][1].set_title("p99 latency per endpoint, 30 s windows (ms)")
        axes[1][1].legend(fontsize=6)
    for ax in axes.flat:
        ax.set_xlabel("seconds")
    fig.suptitle(f"soak: {seconds:.0f} s of mixed load")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def write_markdown(
    path: Path,
    seconds: float,
    threads: int,
    samples: list[Sample],
    table: dict[str, dict[str, float]],
    growth: dict[str, float],
    ledger: Ledger,
    result: dict[str, Any],
) -> str:
    total = samples[-1].requests if samples else 0
    lines = [
        f"# Soak run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{seconds:.0f} s, {threads} load thread(s) in a separate process, {os.cpu_count()} cores. "
        f"Command: `SOAK_SECONDS={seconds:.0f} SOAK_THREADS={threads} make soak`.",
        "",
        f"- requests: {total} ({total / max(seconds, 1):.1f}/s)",
        f"- {ledger.summary()}",
        f"- 5xx answers: {len(result['server_errors'])}",
        f"- peak queue depth outside parking: {max((s.queue_depth for s in samples), default=0)}",
        "- memory growth, 2nd quarter to last quarter: " + ", ".join(f"{n} {g * 100:+.1f}%" for n, g in growth.items()),
        "",
        "| endpoint | requests | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        *[f"| `{n}` | {r['count']} | {r['p50']:.0f} | {r['p99']:.0f} |" for n, r in table.items()],
        "",
        "![soak](soak.png)",
        "",
    ]
    path.write_text("\n".join(lines))
    return "\n".join(lines)
