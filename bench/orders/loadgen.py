"""Load from a separate process: an open-loop client at a fixed arrival rate, and wrk at a fixed connection count.

The open-loop client speaks plain HTTP/1.1 over keep-alive sockets on uvloop (no HTTP library in the way), so it
costs a few per cent of a core at 200 req/s and is not what limits the figures; it reports its own CPU share.
Latency is measured from each request's scheduled send time, so a stalled server shows up as queueing delay
instead of silently lowering the offered rate (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def _request_bytes(host: str, method: str, path: str, headers: dict[str, str], body: Any) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if length is None:
        raise RuntimeError("response without Content-Length")
    await reader.readexactly(int(length.group(1)))
    return status


async def open_loop(
    base: str, method: str, path: str, headers: dict[str, str], body: Any, rate: float, seconds: float
) -> dict[str, Any]:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    request = _request_bytes(f"{host}:{port}", method, path, headers, body)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else await asyncio.open_connection(host, port)
        try:
            status = await _exchange(*conn, request)
        except (OSError, RuntimeError, asyncio.IncompleteReadError):
            errors += 1
            conn[1].close()
            return
        latencies.append((time.perf_counter() - scheduled) * 1000)
        if status >= 400:
            errors += 1
        idle.append(conn)

    for _ in range(20):  # warm the server (and open a few connections)
        await one(time.perf_counter())
    latencies.clear()
    errors = 0
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    for _, writer in idle:
        writer.close()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {**summarise(latencies, errors, elapsed), "client_cpu_percent": round(100 * cpu / elapsed, 1)}


def summarise(latencies_ms: list[float], errors: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies_ms) or [0.0]
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "requests": len(latencies_ms),
        "errors": errors,
        "throughput_rps": round(len(latencies_ms) / seconds, 1),
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(ordered[-1], 2),
    }


def _load_process(args: tuple[Any, ...], results: Any) -> None:
    import uvloop

    results.put(uvloop.run(open_loop(*args)))


def run_open_loop(*args: Any) -> dict[str, Any]:
    """The open-loop client in its own process, so it never shares an event loop (or a core's turn) with the app."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    process = ctx.Process(target=_load_process, args=(args, results))
    process.start()
    outcome: dict[str, Any] = results.get(timeout=600)
    process.join()
    return outcome


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc): what the app costs, whatever else is running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    base: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
    *,
    connections: int,
    seconds: float,
) -> dict[str, Any] | None:
    """wrk (closed loop: each of `connections` sends its next request when the last is answered) for the highest
    rate the stack sustains and its latency there. None when wrk is not installed (`make bench-tools`)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = [f"wrk.method = {json.dumps(method)}"]
    script += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    if body is not None:
        script += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "request.lua"
        lua.write_text("\n".join(script) + "\n")
        out = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency", "-s", str(lua), base + path],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    percentiles = {p: float(v) * _UNITS[u] for p, v, u in _WRK_LATENCY.findall(out)}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "connections": connections,
        "throughput_rps": float(rate.group(1)) if rate else 0.0,
        "p50_ms": round(percentiles.get("50", 0.0), 2),
        "p99_ms": round(percentiles.get("99", 0.0), 2),
        "errors": int(bad.group(1)) if bad else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }
