"""The broker goes away while the service keeps accepting state changes: nothing is lost or doubled."""

import asyncio
from typing import Any
from urllib.parse import urlparse

import pytest
from contracts.orders import TeamAssigned
from servicekit.consumer import Subscription
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.tcp_proxy import TcpProxy
from servicekit.testing import AMQP_URL, delete_namespace, unique_name
from sqlalchemy import text

from .test_backbone import RETRIES, effects, record_effect, team_assigned, wait_for, write_events

pytestmark = pytest.mark.integration


async def test_events_written_during_a_broker_outage_arrive_once_afterwards(db: Database) -> None:
    broker = urlparse(AMQP_URL)
    proxy = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    port = await proxy.start()
    namespace = unique_name("t") + "."

    def settings(amqp_url: str, **extra: Any) -> ServiceSettings:
        return ServiceSettings(
            service_name="outage",
            database_url=db.url,
            broker_namespace=namespace,
            amqp_url=amqp_url,
            retry_delays_ms=RETRIES,
            outbox_poll_seconds=0.3,
            log_json=False,
            **extra,
        )

    # The producer reaches the broker through the proxy; the consumer directly.
    producer = ServiceRuntime(settings(f"amqp://guest:guest@127.0.0.1:{port}/"), db=Database(db.url))
    consumer = ServiceRuntime(
        settings(AMQP_URL, outbox_enabled=False),
        subscriptions=[Subscription("outage", TeamAssigned, record_effect)],
        db=Database(db.url),
    )
    await consumer.start()
    await producer.start()
    try:
        before = [team_assigned(f"before{i}") for i in range(5)]
        await write_events(db, before)
        await wait_for(lambda: _count_is(db, 5))

        await proxy.cut()
        during = [team_assigned(f"during{i}") for i in range(30)]
        for envelope in during:  # the service keeps accepting state changes
            await write_events(db, [envelope])

        async def relay_failing() -> bool:
            async with db.engine.connect() as conn:
                pending = await conn.execute(
                    text("SELECT count(*) FROM outbox WHERE published_at IS NULL AND attempts > 0")
                )
                return bool(pending.scalar_one())

        await wait_for(relay_failing)
        assert len(await effects(db)) == 5  # nothing got through while the broker was away

        await proxy.restore()
        await wait_for(lambda: _count_is(db, 35), timeout=60)
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        notes = sorted(note for _, note in await effects(db))
        assert notes == sorted([e.data.members[0] for e in before + during])
    finally:
        await proxy.cut()
        await producer.stop()
        await consumer.stop()
        await delete_namespace(namespace, consumer.consumers.queue_names(), RETRIES)


async def _count_is(db: Database, n: int) -> bool:
    return len(await effects(db)) == n
