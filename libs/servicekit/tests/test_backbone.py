"""The event backbone against the real PostgreSQL and RabbitMQ: outbox, relay, inbox, retry, parking."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlparse
from uuid import UUID, uuid4

import aio_pika
import pytest
from contracts.envelope import Envelope
from contracts.orders import TeamAssigned
from servicekit import metrics
from servicekit.consumer import Subscription
from servicekit.db import Database
from servicekit.errors import PermanentError
from servicekit.inbox_batcher import InboxBatcher
from servicekit.outbox import add_event
from servicekit.parking import list_parked, replay
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.tcp_proxy import TcpProxy
from servicekit.testing import AMQP_URL, delete_namespace, unique_name
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

pytestmark = pytest.mark.integration

RETRIES = [100, 200, 400]


def team_assigned(note: str = "x") -> Envelope[TeamAssigned]:
    return Envelope.wrap(TeamAssigned(order_id=uuid4(), school_id=uuid4(), members=[note]))


async def record_effect(envelope: Envelope[TeamAssigned], session: AsyncSession) -> None:
    await session.execute(
        text("INSERT INTO effects VALUES (:id, :note)"),
        {"id": envelope.event_id, "note": envelope.data.members[0]},
    )


async def effects(db: Database) -> list[tuple[UUID, str]]:
    async with db.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text("SELECT event_id, note FROM effects"))).all()]


async def wait_for(predicate: Callable[[], Any], timeout: float = 90.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def make_runtime(db: Database) -> AsyncIterator[Callable[..., Any]]:
    namespace = unique_name("t") + "."
    runtimes: list[ServiceRuntime] = []

    async def factory(handler: Any = record_effect, **overrides: Any) -> ServiceRuntime:
        settings = ServiceSettings(
            service_name="kit-test",
            database_url=db.url,
            broker_namespace=namespace,
            retry_delays_ms=RETRIES,
            outbox_poll_seconds=0.5,
            log_json=False,
            **overrides,
        )
        runtime = ServiceRuntime(
            settings,
            subscriptions=[Subscription("kit", TeamAssigned, handler)],
            db=Database(db.url),
            configure_logging=False,
        )
        await runtime.start()
        runtimes.append(runtime)
        return runtime

    yield factory
    queues: list[str] = []
    for runtime in runtimes:
        queues += runtime.consumers.queue_names()
        if runtime.started:
            await runtime.stop()
    await delete_namespace(namespace, set(queues), RETRIES)


async def write_events(db: Database, envelopes: list[Envelope[Any]]) -> None:
    async with db.transaction() as session:
        for envelope in envelopes:
            await add_event(session, envelope)


async def test_outbox_events_reach_the_consumer_once(db: Database, make_runtime: Any) -> None:
    await make_runtime()
    sent = [team_assigned(f"n{i}") for i in range(50)]
    await write_events(db, sent)

    async def all_arrived() -> bool:
        return len(await effects(db)) == 50

    await wait_for(all_arrived)
    assert sorted(e[0] for e in await effects(db)) == sorted(e.event_id for e in sent)
    async with db.engine.connect() as conn:
        pending = (await conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))).scalar()
    assert pending == 0


async def test_rolled_back_transaction_publishes_nothing(db: Database, make_runtime: Any) -> None:
    await make_runtime()

    async def failing_state_change() -> None:
        async with db.transaction() as session:
            await add_event(session, team_assigned("ghost"))
            raise RuntimeError("state change failed")

    with pytest.raises(RuntimeError):
        await failing_state_change()
    await write_events(db, [team_assigned("real")])

    async def one_arrived() -> bool:
        return len(await effects(db)) == 1

    await wait_for(one_arrived)
    await asyncio.sleep(0.5)
    assert [e[1] for e in await effects(db)] == ["real"]


async def test_a_stream_of_commits_is_published_in_batches(db: Database, make_runtime: Any) -> None:
    """Each commit wakes the relay, but it lingers between claims: twenty commits do not cost twenty claims."""
    producer = await make_runtime(outbox_linger_ms=1000)
    writes = [team_assigned(f"s{i}") for i in range(20)]
    for envelope in writes:  # one transaction each, through the relaying runtime, spaced like a steady stream
        async with producer.db.transaction() as session:
            await add_event(session, envelope)
        await asyncio.sleep(0.03)

    async def all_arrived() -> bool:
        return len(await effects(db)) == len(writes)

    await wait_for(all_arrived)
    assert producer.relay.published == len(writes)
    assert producer.relay.batches <= len(writes) // 2


async def test_unroutable_event_stays_pending_with_its_error(db: Database, make_runtime: Any) -> None:
    runtime = await make_runtime()
    stray = Envelope.wrap(TeamAssigned(order_id=uuid4(), school_id=uuid4(), members=["x"]))
    async with db.transaction() as session:
        await add_event(session, stray)
        await session.execute(
            text("UPDATE outbox SET routing_key = 'nobody.listens.v1' WHERE event_id = :id"), {"id": stray.event_id}
        )

    async def failed_once() -> bool:
        async with db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT attempts, last_error, published_at FROM outbox WHERE event_id = :id"),
                    {"id": stray.event_id},
                )
            ).one()
        return row.attempts >= 1

    await wait_for(failed_once)
    async with db.engine.connect() as conn:
        row = (await conn.execute(text("SELECT last_error, published_at FROM outbox"))).one()
    assert row.published_at is None
    assert "NO_ROUTE" in row.last_error or "DeliveryError" in row.last_error
    assert runtime.relay.failures >= 1


async def test_duplicate_publish_has_one_effect(db: Database, make_runtime: Any) -> None:
    runtime = await make_runtime()
    envelope = team_assigned("dup")
    body = envelope.model_dump_json().encode()
    for _ in range(3):
        await runtime.broker.publish(
            body,
            exchange=runtime.naming.events_exchange,
            routing_key=envelope.routing_key,
            message_id=str(envelope.event_id),
            content_type="application/json",
        )
    follow = team_assigned("after")
    await write_events(db, [follow])

    async def both_seen() -> bool:
        return {e[1] for e in await effects(db)} == {"dup", "after"}

    await wait_for(both_seen)
    await asyncio.sleep(0.3)
    assert [e[1] for e in await effects(db)].count("dup") == 1


async def test_redelivery_after_crash_before_ack_has_one_effect(db: Database, make_runtime: Any) -> None:
    """A consumer commits the effect then dies before acking: the redelivered copy is a no-op."""
    runtime = await make_runtime()
    queue = runtime.consumers.queue_names()[0]
    for subscriber in runtime.broker.subscribers:
        await subscriber.stop()  # the consumer is down; messages wait in its queue
    envelope = team_assigned("crash")
    await write_events(db, [envelope])
    await runtime.relay.publish_once()

    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    q = await channel.get_queue(queue, ensure=False)
    incoming = await q.get(no_ack=False, timeout=10)
    assert incoming is not None
    # The "crashing" replica applies the effect through the same code path, then dies without acking.
    await runtime.consumers.process(runtime.consumers.subscriptions[0], queue, incoming.body, _Shim(incoming))
    await connection.close()  # crash: unacked message goes back to the queue

    replica = await make_runtime()  # a healthy replica picks the redelivery up

    async def drained() -> bool:
        ch = await replica.broker._connection.channel()  # type: ignore[union-attr]
        try:
            declared = await ch.declare_queue(queue, passive=True)
            return declared.declaration_result.message_count == 0
        finally:
            await ch.close()

    await wait_for(drained)
    await asyncio.sleep(0.3)
    assert [e[1] for e in await effects(db)] == ["crash"]


async def test_poison_message_is_parked_after_spaced_retries(db: Database, make_runtime: Any) -> None:
    attempts: dict[str, list[float]] = {}

    async def flaky(envelope: Envelope[TeamAssigned], session: AsyncSession) -> None:
        note = envelope.data.members[0]
        if note == "poison":
            attempts.setdefault(note, []).append(asyncio.get_running_loop().time())
            raise RuntimeError("handler always fails on this one")
        await record_effect(envelope, session)

    # One delivery per transaction, so every handler run is one delivery (batching is tested below).
    runtime = await make_runtime(flaky, consumer_batch_max=1)
    queue = runtime.consumers.queue_names()[0]
    await write_events(db, [team_assigned("poison")] + [team_assigned(f"ok{i}") for i in range(20)])

    async def healthy_ones_done() -> bool:
        return len(await effects(db)) == 20

    await wait_for(healthy_ones_done)
    parked = await _wait_parked(queue)
    assert json.loads(parked.body)["data"]["members"] == ["poison"]
    assert "failed after 3 retries" in parked.headers["x-parked-reason"]
    assert "RuntimeError" in parked.headers["x-parked-reason"]
    assert len(attempts["poison"]) == 4  # first try + three retries
    # Each retry waited out its own, longer delay queue (the broker records the expiry in x-death).
    expired = {d["queue"]: d["count"] for d in parked.headers["x-death"] if d["reason"] == "expired"}
    assert expired == {f"{queue}.retry.{delay}ms": 1 for delay in RETRIES}


async def test_deliveries_in_flight_together_share_a_transaction_and_a_failure_stays_with_its_message(
    db: Database, make_runtime: Any
) -> None:
    runs: list[str] = []

    async def poisoned(envelope: Envelope[TeamAssigned], session: AsyncSession) -> None:
        runs.append(envelope.data.members[0])
        if envelope.data.members[0] == "poison":
            raise PermanentError("this one is bad")
        await record_effect(envelope, session)

    runtime = await make_runtime(poisoned)
    queue = runtime.consumers.queue_names()[0]
    for subscriber in runtime.broker.subscribers:  # let the queue fill up, then take it all at once
        await subscriber.stop()
    healthy = [team_assigned(f"ok{i}") for i in range(60)]
    await write_events(db, [*healthy[:30], team_assigned("poison"), *healthy[30:]])
    await wait_for(lambda: _backlog_empty(runtime))
    batches_before = _batch_histogram("kit")
    for subscriber in runtime.broker.subscribers:
        await subscriber.start()

    async def healthy_ones_done() -> bool:
        return len(await effects(db)) == 60

    await wait_for(healthy_ones_done)
    parked = await _wait_parked(queue)
    assert parked.headers["x-parked-reason"] == "rejected: PermanentError: this one is bad"
    assert sorted(note for _, note in await effects(db)) == sorted(e.data.members[0] for e in healthy)
    count, total = (after - before for after, before in zip(_batch_histogram("kit"), batches_before, strict=True))
    assert total == 60  # the healthy ones committed, each counted once; the poison never was
    assert count < total, "deliveries in flight together should have shared transactions"
    # The poison ran at most twice: in its batch (rolled back with it) and again on its own. The others
    # ran again only if they shared its batch, and still took effect once.
    assert 1 <= runs.count("poison") <= 2


async def _backlog_empty(runtime: ServiceRuntime) -> bool:
    return (await runtime.relay.backlog())[0] == 0


def _batch_histogram(consumer: str) -> tuple[float, float]:
    samples = {
        s.name: s.value
        for m in metrics.CONSUMER_BATCH_SIZE.collect()
        for s in m.samples
        if s.labels.get("consumer") == consumer
    }
    return samples.get("oneclass_consumer_batch_size_count", 0.0), samples.get("oneclass_consumer_batch_size_sum", 0.0)


async def test_the_same_event_twice_in_one_batch_takes_effect_once(db: Database) -> None:
    batcher = InboxBatcher(db, "kit-batch", record_effect, max_batch=32)
    first, second = team_assigned("a"), team_assigned("b")
    try:
        results = await asyncio.gather(batcher.apply(first), batcher.apply(first), batcher.apply(second))
    finally:
        await batcher.stop()
    assert sorted(results) == [False, True, True]
    assert sorted(note for _, note in await effects(db)) == ["a", "b"]


async def test_malformed_and_rejected_messages_are_parked_at_once(db: Database, make_runtime: Any) -> None:
    async def rejecting(envelope: Envelope[TeamAssigned], session: AsyncSession) -> None:
        raise PermanentError("order unknown")

    runtime = await make_runtime(rejecting)
    queue = runtime.consumers.queue_names()[0]
    await runtime.broker.publish(
        b"{not json", exchange=runtime.naming.events_exchange, routing_key="orders.team_assigned.v1"
    )
    first = await _wait_parked(queue)
    assert first.headers["x-parked-reason"].startswith("malformed message")
    await write_events(db, [team_assigned("reject-me")])
    second = await _wait_parked(queue)
    assert second.headers["x-parked-reason"] == "rejected: PermanentError: order unknown"


async def _wait_parked(queue: str) -> aio_pika.abc.AbstractIncomingMessage:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        parking = await channel.get_queue(f"{queue}.parking", ensure=False)
        for _ in range(200):
            message = await parking.get(no_ack=True, fail=False)
            if message is not None:
                return message
            await asyncio.sleep(0.1)
    raise AssertionError("nothing was parked")


class _Shim:
    """What ConsumerRuntime.process reads of a FastStream message, over a raw aio-pika one."""

    def __init__(self, incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.raw_message = incoming
        self.headers = incoming.headers
        self.message_id = incoming.message_id
        self.correlation_id = incoming.correlation_id
        self.content_type = incoming.content_type


async def test_parked_message_can_be_listed_and_replayed(db: Database, make_runtime: Any) -> None:
    broken = {"on": True}

    async def sometimes(envelope: Envelope[TeamAssigned], session: AsyncSession) -> None:
        if broken["on"]:
            raise RuntimeError("dependency down")
        await record_effect(envelope, session)

    runtime = await make_runtime(sometimes)
    queue = runtime.consumers.queue_names()[0]
    await write_events(db, [team_assigned("parked")])

    async def is_parked() -> bool:
        return len(await list_parked(AMQP_URL, f"{queue}.parking")) == 1

    await wait_for(is_parked)
    listed = await list_parked(AMQP_URL, f"{queue}.parking")
    assert listed[0].original_queue == queue
    assert "dependency down" in listed[0].reason
    assert len(await list_parked(AMQP_URL, f"{queue}.parking")) == 1  # listing removed nothing

    broken["on"] = False
    assert await replay(AMQP_URL, f"{queue}.parking") == 1

    async def applied() -> bool:
        return [e[1] for e in await effects(db)] == ["parked"]

    await wait_for(applied)
    assert await list_parked(AMQP_URL, f"{queue}.parking") == []


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
