"""CPU cost of a producer's write transaction (a state row + its outbox row), through servicekit's
`Database.transaction()` (SQLAlchemy's async session, as the services write) beside the same two
statements on a bare asyncpg pool, measured in the same run: the part of the backbone's producer CPU
the session layer accounts for.

    uv run python bench/servicekit/write_transaction_cost.py [--transactions 4000] [--writers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from contracts.envelope import Envelope
from contracts.orders import TeamAssigned
from servicekit.db import Database
from servicekit.outbox import add_event
from servicekit.tables import metadata
from servicekit.testing import create_database, database_url, drop_database, unique_name
from sqlalchemy import text

_OUTBOX = "INSERT INTO outbox (event_id, routing_key, body, headers) VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb)"


def _envelope(order_id: uuid.UUID) -> Envelope[TeamAssigned]:
    return Envelope.wrap(TeamAssigned(order_id=order_id, school_id=uuid.uuid4(), members=["m"]))


async def _cpu_ms_per_transaction(write: Callable[[], Awaitable[None]], transactions: int, writers: int) -> float:
    async def writer(count: int) -> None:
        for _ in range(count):
            await write()

    started = time.process_time()
    await asyncio.gather(*(writer(transactions // writers) for _ in range(writers)))
    return 1000 * (time.process_time() - started) / (transactions // writers * writers)


async def main(transactions: int, writers: int, rounds: int) -> None:
    name = unique_name("bench_write_tx")
    db = Database(await create_database(name), pool_size=writers + 2)
    pool = await asyncpg.create_pool(database_url(name, driver="postgresql"), min_size=writers, max_size=writers)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(text("CREATE TABLE state (id uuid PRIMARY KEY, note text)"))

        async def through_session() -> None:
            async with db.transaction() as session:
                order_id = uuid.uuid4()
                await session.execute(text("INSERT INTO state VALUES (:id, 'x')"), {"id": order_id})
                await add_event(session, _envelope(order_id))

        async def on_bare_asyncpg() -> None:
            async with pool.acquire() as conn, conn.transaction():
                order_id = uuid.uuid4()
                await conn.execute("INSERT INTO state VALUES ($1, 'x')", order_id)
                envelope = _envelope(order_id)
                await conn.execute(_OUTBOX, envelope.event_id, envelope.routing_key, envelope.model_dump_json(), "{}")

        await _cpu_ms_per_transaction(through_session, writers * 10, writers)  # warm both paths up
        await _cpu_ms_per_transaction(on_bare_asyncpg, writers * 10, writers)
        for _ in range(rounds):  # interleaved: a busy machine slows both alike
            session_ms = await _cpu_ms_per_transaction(through_session, transactions, writers)
            bare_ms = await _cpu_ms_per_transaction(on_bare_asyncpg, transactions, writers)
            print(
                f"write transaction, CPU of this process: Database.transaction() {session_ms:.2f} ms, "
                f"bare asyncpg (baseline) {bare_ms:.2f} ms, ratio {session_ms / bare_ms:.2f}x"
            )
    finally:
        await pool.close()
        await db.dispose()
        await drop_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=4000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.transactions, args.writers, args.rounds))
