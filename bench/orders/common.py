"""Shared by the orders benchmarks: a throwaway database, the real app as deployed in its own processes (uvicorn on
uvloop and httptools, its outbox relay publishing to a sink queue), tokens. The load generators are in loadgen.py."""

import asyncio
import contextlib
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from loadgen import process_cpu_seconds
from servicekit.alembic_env import upgrade_async
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET
from servicekit.testing import AMQP_URL, create_database, delete_namespace, drop_database, free_port, unique_name
from servicekit.topology import Naming

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


def bench_app() -> Any:
    """uvicorn's app factory in every worker: the orders app as deployed (settings from the environment, the
    runtime's broker, consumers and outbox relay started by the lifespan), plus a bare SELECT 1 baseline route."""
    from fastapi import APIRouter
    from orders.bootstrap import build_runtime, create_app
    from orders.entrypoints.http.dependencies import UowDep
    from orders.settings import Settings
    from sqlalchemy import text

    settings = Settings()
    app = create_app(settings, build_runtime(settings))
    baseline = APIRouter()

    @baseline.get("/bench/select1")
    async def select1(uow: UowDep) -> dict[str, int]:
        return {"one": (await uow.session.execute(text("SELECT 1"))).scalar_one()}

    app.include_router(baseline)
    return app


def _serve(workers: int, port: int) -> None:
    import sys

    import uvicorn

    # uvicorn hands its stdin's descriptor number to the workers it spawns, and only 0-2 are inherited: when
    # this process was started without a stdin its /dev/null sits elsewhere and every worker dies at start.
    devnull = os.open(os.devnull, os.O_RDONLY)
    if devnull != 0:
        os.dup2(devnull, 0)
        os.close(devnull)
    sys.stdin = os.fdopen(0)

    # uvloop and httptools named explicitly (servicekit's serve() gets the same from uvicorn's "auto" choice).
    uvicorn.run(
        "common:bench_app",
        factory=True,
        app_dir=str(Path(__file__).parent),
        workers=workers,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


@dataclass
class Server:
    process: mp.process.BaseProcess
    base: str
    namespace: str

    def cpu_seconds(self) -> float:
        """CPU used so far by the server and its worker processes."""
        return sum(process_cpu_seconds(pid) for pid in _tree(self.process.pid or 0))

    def is_alive(self) -> bool:
        return self.process.is_alive()


def _tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


async def _sink(namespace: str, *, create: bool) -> None:
    """Stands in for the services that consume orders' events, so the relay's publishes are routed."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        if create:
            exchange = await channel.declare_exchange(Naming(namespace).events_exchange, "topic", durable=True)
            queue = await channel.declare_queue(
                f"{namespace}bench-sink", durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(exchange, "#")
        else:
            await channel.queue_delete(f"{namespace}bench-sink")


@contextmanager
def running_server(url: str, *, workers: int = 1, **settings: str) -> Iterator[Server]:
    """The deployed orders app on a free port with `workers` uvicorn workers; cleans up its broker objects."""
    from orders.bootstrap import build_runtime
    from orders.settings import Settings

    namespace = unique_name("bench") + "."
    port = free_port()
    env = {
        "ORDERS_DATABASE_URL": url,
        "ORDERS_HTTP_PORT": str(port),
        "BROKER_NAMESPACE": namespace,
        "LOG_JSON": "false",
        "LOG_LEVEL": "WARNING",
        # The limiter still runs on every request but never refuses: one client is the whole load here.
        "ORDERS_RATE_LIMIT_REQUESTS": "1000000000",
        **settings,
    }
    asyncio.run(_sink(namespace, create=True))
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the spawned server and its workers read their settings from the environment
    try:
        process = mp.get_context("spawn").Process(target=_serve, args=(workers, port), daemon=False)
        process.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    server = Server(process, f"http://127.0.0.1:{port}", namespace)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signal.SIGTERM)  # graceful: the workers' relays flush and close
        process.join(60)
        queues = build_runtime(Settings(database_url=url, broker_namespace=namespace)).consumers.queue_names()
        asyncio.run(_sink(namespace, create=False))
        asyncio.run(delete_namespace(namespace, queues, Settings().retry_delays_ms))


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise RuntimeError("orders app exited during start-up")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("orders app did not become ready")


def token(role: str, school_id: str | None = None, sub: str = "bench") -> str:
    return issue_token(DEV_JWT_SECRET, sub=sub, role=role, school_id=school_id)  # type: ignore[arg-type]
