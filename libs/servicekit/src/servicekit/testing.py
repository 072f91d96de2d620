"""Helpers for tests that use the real PostgreSQL and RabbitMQ: throwaway databases and namespaces."""

from __future__ import annotations

import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import asyncpg

ADMIN_DSN = os.environ.get("TEST_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


# Ports for servers a test starts in another process. A port the kernel hands out for bind(0) comes from
# the ephemeral range, which outgoing connections (to PostgreSQL, RabbitMQ, a sandbox) draw from too: one
# of them can take it in the second between picking it and the server binding it. So pick below that
# range, and never hand out the same port twice in one run.
_LISTEN_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, outside the kernel's ephemeral range, not given out before."""
    for _ in range(200):
        port = random.choice(_LISTEN_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_LISTEN_PORTS}")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def database_url(name: str, *, driver: str = "postgresql+asyncpg") -> str:
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", f"{driver}://", 1)
    return f"{base}/{name}"


async def create_database(name: str) -> str:
    """Create an empty database; fails loudly when PostgreSQL is not there."""
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(name)


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_queues(names: Iterable[str], exchanges: Iterable[str] = ()) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for name in names:
            channel = await connection.channel()
            try:
                await channel.queue_delete(name)
            except Exception:
                pass
            finally:
                if not channel.is_closed:
                    await channel.close()
        for exchange in exchanges:
            channel = await connection.channel()
            try:
                await channel.exchange_delete(exchange)
            except Exception:
                pass
            finally:
                if not channel.is_closed:
                    await channel.close()


async def delete_namespace(namespace: str, queues: Iterable[str], retry_delays_ms: Iterable[int]) -> None:
    """Delete a test namespace's queues (main, delay, parking) and its exchanges."""
    names: list[str] = []
    for queue in queues:
        names += [queue, f"{queue}.parking", *(f"{queue}.retry.{d}ms" for d in retry_delays_ms)]
    await delete_queues(names, [f"{namespace}oneclass.events", f"{namespace}oneclass.dead-letter"])


@asynccontextmanager
async def migrated_database(prefix: str, alembic_ini: Path) -> AsyncIterator[str]:
    """A throwaway database with a service's migrations applied; dropped afterwards."""
    from servicekit.alembic_env import upgrade_async

    name = unique_name(prefix)
    url = await create_database(name)
    try:
        await upgrade_async(alembic_ini, url)
        yield url
    finally:
        await drop_database(name)
