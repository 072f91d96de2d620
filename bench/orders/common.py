"""Shared by the orders benchmarks: a throwaway database, the real app in its own process, a load process."""

import asyncio
import multiprocessing as mp
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from servicekit.alembic_env import upgrade_async
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET
from servicekit.testing import create_database, drop_database, unique_name

ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = ROOT / "services/orders/alembic.ini"
BASE = "/api/v1/migration-services"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def new_database() -> tuple[str, str]:
    name = unique_name("bench_orders")
    url = await create_database(name)
    await upgrade_async(ALEMBIC_INI, url)
    return name, url


async def remove_database(name: str) -> None:
    await drop_database(name)


def _serve(url: str, port: int) -> None:
    """The orders app as deployed (same middleware, auth, session, RLS), plus a bare SELECT 1 baseline route."""
    import uvicorn
    from fastapi import APIRouter
    from orders.bootstrap import build_runtime, create_app
    from orders.entrypoints.http.dependencies import UowDep
    from orders.settings import Settings
    from sqlalchemy import text

    settings = Settings(
        database_url=url,
        http_port=port,
        log_json=False,
        log_level="WARNING",
        outbox_enabled=False,  # the outbox row is written; relaying it is the backbone benchmark's subject
        rate_limit_requests=1_000_000_000,  # the limiter still runs on every request, it just never refuses
        broker_namespace=unique_name("bench") + ".",
    )
    runtime = build_runtime(settings)
    app = create_app(settings, runtime)
    baseline = APIRouter()

    @baseline.get("/bench/select1")
    async def select1(uow: UowDep) -> dict[str, int]:
        return {"one": (await uow.session.execute(text("SELECT 1"))).scalar_one()}

    app.include_router(baseline)
    # lifespan off: the runtime's broker, consumers and relay are not started. The HTTP path (auth, limiter,
    # session, RLS, outbox row) is exactly the deployed one; relaying is the backbone benchmark's subject.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def start_server(url: str) -> tuple[mp.Process, str]:
    port = free_port()
    process = mp.get_context("spawn").Process(target=_serve, args=(url, port), daemon=True)
    process.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("orders app did not start")


def token(role: str, school_id: str | None = None, sub: str = "bench") -> str:
    return issue_token(DEV_JWT_SECRET, sub=sub, role=role, school_id=school_id)  # type: ignore[arg-type]


def summarise(latencies_ms: list[float], errors: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "requests": len(ordered),
        "errors": errors,
        "throughput_rps": round(len(ordered) / seconds, 1),
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(ordered[-1], 2),
    }


async def open_loop(
    base: str, method: str, path: str, headers: dict[str, str], body: Any, rate: float, seconds: float
) -> dict[str, Any]:
    """Send at a fixed arrival rate (not waiting for answers), as independent clients would."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:

        async def one() -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.request(method, path, json=body)
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code >= 400:
                errors += 1

        for _ in range(20):  # warm the connection pool and the server's caches
            await one()
        latencies.clear()
        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return summarise(latencies, errors, elapsed)


def _load_process(args: tuple[Any, ...], results: Any) -> None:
    results.put(asyncio.run(open_loop(*args)))


def run_load(*args: Any) -> dict[str, Any]:
    """The load generator runs in its own process, so it never shares a core's event loop with the server."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    process = ctx.Process(target=_load_process, args=(args, results))
    process.start()
    outcome: dict[str, Any] = results.get(timeout=600)
    process.join()
    return outcome
