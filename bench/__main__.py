"""`make bench`: run every benchmark and record what each printed in docs/benchmarks-latest.md.

Each benchmark prints its own figure beside a baseline measured in the same run; this runner only
runs them one after another (never in parallel: they would measure each other) and keeps the output.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("Event backbone (issue: foundation)", ["-m", "bench.backbone"]),
]


def discovered() -> list[tuple[str, list[str]]]:
    """Every service's benchmark scripts: bench/<area>/<name>.py with a __main__ block."""
    found = []
    for path in sorted(ROOT.glob("bench/*/*.py")):
        if path.name.startswith("_") or "__main__" not in path.read_text():
            continue
        found.append((f"{path.parent.name}: {path.stem}", [str(path.relative_to(ROOT))]))
    return found


def main() -> int:
    only = set(sys.argv[1:])
    runs = [b for b in BENCHMARKS + discovered() if not only or any(o in b[0] or o in " ".join(b[1]) for o in only)]
    started_at = dt.datetime.now(dt.UTC)
    sections = [f"# Benchmark run {started_at:%Y-%m-%d %H:%M} UTC\n", f"Machine: {os.cpu_count()} cores.\n"]
    failed = 0
    for title, argv in runs:
        print(f"\n=== {title}: python {' '.join(argv)}", flush=True)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        output = proc.stdout.strip()
        print(output)
        if proc.returncode != 0:
            failed += 1
            print(proc.stderr[-3000:], file=sys.stderr)
        sections.append(
            f"## {title}\n\n`uv run python {' '.join(argv)}` — exit {proc.returncode}, "
            f"{time.monotonic() - started:.0f} s\n\n```\n{output}\n```\n"
        )
    (ROOT / "docs/benchmarks-latest.md").write_text("\n".join(sections))
    print("\nrecorded in docs/benchmarks-latest.md")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
