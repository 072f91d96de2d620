"""Shared by the orders benchmarks: a throwaway database, the real app in its own process (uvicorn on uvloop and
httptools), tokens. The load generators are in loadgen.py."""

import multiprocessing as mp
import time
from pathlib import Path

import httpx
from servicekit.alembic_env import upgrade_async
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET
from servicekit.testing import create_database, drop_database, free_port, unique_name

ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = ROOT / "services/orders/alembic.ini"
BASE = "/api/v1/migration-services"


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
    # uvloop and httptools named explicitly (servicekit's serve() gets the same from uvicorn's "auto" choice).
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
    )


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
