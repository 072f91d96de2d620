"""Events per second through the whole backbone, beside a raw aio-pika loop on the same topology.

Both sides run as they would in production: a producer process and a consumer process.
- Backbone: producer transactions each write a state row + its outbox row; the producer's relay
  publishes (confirms, mandatory); the consumer runtime claims the inbox and writes the effect in one
  transaction. Timed from the first write until the last effect is committed.
- Baseline: aio-pika publishing with confirms (same pipelining window as the relay's batch) into a
  quorum queue with the same arguments, and a consumer acking each message. Timed from the first
  publish until the last ack.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from typing import Any
from uuid import uuid4

import aio_pika
from contracts.envelope import Envelope
from contracts.orders import TeamAssigned
from servicekit.consumer import Subscription
from servicekit.db import Database
from servicekit.outbox import add_event
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.tables import metadata
from servicekit.testing import AMQP_URL, create_database, delete_namespace, drop_database, unique_name
from servicekit.topology import Naming, main_queue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bench.cpu import machine_busy_seconds, server_cpu_seconds

WINDOW = 200
ROUTING_KEY = TeamAssigned.routing_key()


def _mark(results: Any, kind: str, at: float, value: float) -> None:
    """A timing mark with the machine's busy time and the servers' CPU at that moment."""
    results.put((kind, at, value))
    results.put((f"{kind}_servers", *server_cpu_seconds()))


def _body() -> bytes:
    return Envelope.wrap(TeamAssigned(order_id=uuid4(), school_id=uuid4(), members=["m"])).model_dump_json().encode()


# ---------------------------------------------------------------- raw aio-pika baseline


async def _raw_declare(naming: Naming, queue_name: str) -> None:
    spec = main_queue(naming, queue_name, ROUTING_KEY, delivery_limit=10)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(naming.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        arguments = {"x-queue-type": "quorum", **(spec.arguments or {})}
        queue = await channel.declare_queue(queue_name, durable=True, arguments=arguments)
        await queue.bind(exchange, ROUTING_KEY)


async def _raw_consumer(queue_name: str, n: int, ready: Any, results: Any) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=32)
        queue = await channel.get_queue(queue_name)
        done = asyncio.Event()
        count = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal count
            await message.ack()
            count += 1
            if count == n:
                done.set()

        await queue.consume(on_message)
        cpu = time.process_time()
        ready.set()
        await asyncio.wait_for(done.wait(), 600)
        _mark(results, "consumer_done", time.time(), machine_busy_seconds())
        results.put(("consumer_cpu", time.process_time() - cpu, 0))


async def _raw_publisher(naming: Naming, n: int, results: Any) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(naming.events_exchange)
        body = _body()
        cpu = time.process_time()
        _mark(results, "start", time.time(), machine_busy_seconds())
        for offset in range(0, n, WINDOW):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body, message_id=str(uuid4()), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        ROUTING_KEY,
                        mandatory=True,
                    )
                    for _ in range(min(WINDOW, n - offset))
                )
            )
        results.put(("producer_cpu", time.process_time() - cpu, 0))


def _run_raw_consumer(queue_name: str, n: int, ready: Any, results: Any) -> None:
    asyncio.run(_raw_consumer(queue_name, n, ready, results))


def _run_raw_publisher(namespace: str, n: int, results: Any) -> None:
    asyncio.run(_raw_publisher(Naming(namespace), n, results))


def raw_rate(n: int) -> float:
    ctx = mp.get_context("spawn")
    naming = Naming(unique_name("bench_raw") + ".")
    queue_name = naming.queue("bench", "raw")
    asyncio.run(_raw_declare(naming, queue_name))
    ready, results = ctx.Event(), ctx.Queue()
    consumer = ctx.Process(target=_run_raw_consumer, args=(queue_name, n, ready, results))
    consumer.start()
    ready.wait(60)
    publisher = ctx.Process(target=_run_raw_publisher, args=(naming.namespace, n, results))
    publisher.start()
    marks = {kind: (at, value) for kind, at, value in (results.get(timeout=600) for _ in range(6))}
    publisher.join(60)
    consumer.join(60)
    asyncio.run(delete_namespace(naming.namespace, [queue_name], []))
    CPU["raw"] = _cpu_per_event(marks, n)
    return n / (marks["consumer_done"][0] - marks["start"][0])


def _cpu_per_event(marks: dict[str, tuple[float, float]], n: int) -> dict[str, float]:
    """Milliseconds of CPU per event: each side's process, PostgreSQL, RabbitMQ, and the rest of the
    machine's busy time over the same span (the kernel's network stack, other processes)."""
    producer, consumer = marks["producer_cpu"][0], marks["consumer_cpu"][0]
    (pg_start, mq_start), (pg_done, mq_done) = marks["start_servers"], marks["consumer_done_servers"]
    postgres, rabbitmq = pg_done - pg_start, mq_done - mq_start
    machine = marks["consumer_done"][1] - marks["start"][1]
    figures = {
        "producer": producer,
        "consumer": consumer,
        "postgres": postgres,
        "rabbitmq": rabbitmq,
        "other": max(0.0, machine - producer - consumer - postgres - rabbitmq),
    }
    figures["total"] = sum(figures.values())
    return {part: 1000 * seconds / n for part, seconds in figures.items()}


# ---------------------------------------------------------------- the backbone


async def _effect(envelope: Envelope[TeamAssigned], session: AsyncSession) -> None:
    await session.execute(
        text("INSERT INTO effects VALUES (:id, :note)"), {"id": envelope.event_id, "note": envelope.data.members[0]}
    )


def _settings(url: str, namespace: str, **overrides: Any) -> ServiceSettings:
    return ServiceSettings(
        service_name="bench",
        database_url=url,
        broker_namespace=namespace,
        log_json=False,
        log_level="WARNING",
        **overrides,
    )


async def _backbone_consumer(url: str, namespace: str, n: int, ready: Any, results: Any) -> None:
    runtime = ServiceRuntime(
        _settings(url, namespace, outbox_enabled=False),
        subscriptions=[Subscription("bench", TeamAssigned, _effect)],
        db=Database(url, pool_size=20),
    )
    await runtime.start()
    cpu = time.process_time()
    ready.set()
    async with runtime.db.engine.connect() as conn:
        while (await conn.execute(text("SELECT count(*) FROM effects"))).scalar_one() < n:
            await conn.commit()
            await asyncio.sleep(0.02)
    _mark(results, "consumer_done", time.time(), machine_busy_seconds())
    results.put(("consumer_cpu", time.process_time() - cpu, 0))
    await runtime.stop()


async def _backbone_producer(url: str, namespace: str, n: int, results: Any, writers: int = 8) -> None:
    runtime = ServiceRuntime(_settings(url, namespace), db=Database(url, pool_size=writers + 2))
    await runtime.start()

    async def writer(count: int) -> None:
        for _ in range(count):
            async with runtime.db.transaction() as session:
                order_id = uuid4()
                await session.execute(text("INSERT INTO state VALUES (:id, 'x')"), {"id": order_id})
                await add_event(
                    session, Envelope.wrap(TeamAssigned(order_id=order_id, school_id=uuid4(), members=["m"]))
                )

    cpu = time.process_time()
    _mark(results, "start", time.time(), machine_busy_seconds())
    await asyncio.gather(*(writer(n // writers + (1 if i < n % writers else 0)) for i in range(writers)))
    results.put(("written", time.time(), n))
    while (await runtime.relay.backlog())[0] > 0:  # noqa: ASYNC110 - polling the database, not an event
        await asyncio.sleep(0.05)
    results.put(("published", time.time(), n))
    results.put(("producer_cpu", time.process_time() - cpu, 0))
    await runtime.stop()


def _run_backbone_consumer(url: str, namespace: str, n: int, ready: Any, results: Any) -> None:
    asyncio.run(_backbone_consumer(url, namespace, n, ready, results))


def _run_backbone_producer(url: str, namespace: str, n: int, results: Any) -> None:
    asyncio.run(_backbone_producer(url, namespace, n, results))


async def _prepare_database() -> tuple[str, str]:
    name = unique_name("bench_backbone")
    url = await create_database(name)
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(text("CREATE TABLE state (id uuid primary key, note text)"))
        await conn.execute(text("CREATE TABLE effects (event_id uuid primary key, note text)"))
    await db.dispose()
    return name, url


async def _effects(url: str) -> int:
    db = Database(url)
    async with db.engine.connect() as conn:
        count = int((await conn.execute(text("SELECT count(*) FROM effects"))).scalar_one())
    await db.dispose()
    return count


def backbone_rate(n: int) -> float:
    ctx = mp.get_context("spawn")
    name, url = asyncio.run(_prepare_database())
    namespace = unique_name("bench_bb") + "."
    ready, results = ctx.Event(), ctx.Queue()
    consumer = ctx.Process(target=_run_backbone_consumer, args=(url, namespace, n, ready, results))
    consumer.start()
    ready.wait(60)
    producer = ctx.Process(target=_run_backbone_producer, args=(url, namespace, n, results))
    producer.start()
    marks = {kind: (at, value) for kind, at, value in (results.get(timeout=900) for _ in range(8))}
    producer.join(120)
    consumer.join(120)
    effects = asyncio.run(_effects(url))
    queue = Naming(namespace).queue("bench", f"{TeamAssigned.event_type()}.v1")
    asyncio.run(delete_namespace(namespace, [queue], ServiceSettings().retry_delays_ms))
    asyncio.run(drop_database(name))
    if effects != n:
        raise SystemExit(f"backbone lost or doubled events: {effects} effects for {n} events")
    CPU["backbone"] = _cpu_per_event(marks, n)
    start = marks["start"][0]
    STAGES.update({stage: marks[stage][0] - start for stage in ("written", "published", "consumer_done")})
    return n / (marks["consumer_done"][0] - start)


STAGES: dict[str, float] = {}  # seconds from the first write until each stage finished, for the report
CPU: dict[str, dict[str, float]] = {}  # ms of CPU per event by part, for each loop


def run(n: int) -> dict[str, Any]:
    raw = raw_rate(n)
    backbone = backbone_rate(n)
    return {
        "events": n,
        "raw_per_s": raw,
        "backbone_per_s": backbone,
        "ratio": backbone / raw,
        "stages": STAGES,
        "cpu_ms_per_event": CPU,
    }


def report(result: dict[str, Any]) -> str:
    cores = os.cpu_count() or 1
    return (
        f"backbone: {result['backbone_per_s']:.0f} events/s (state+outbox tx → relay → quorum queue → inbox + effect)\n"
        f"baseline: {result['raw_per_s']:.0f} msgs/s (raw aio-pika publish-with-confirms → consume-with-ack)\n"
        f"ratio:    {result['ratio']:.2f}x (goal >= 0.5x), {result['events']} events each, no loss, no duplicate\n"
        + "stages:   "
        + ", ".join(f"{stage} after {seconds:.1f} s" for stage, seconds in result["stages"].items())
        + "\n"
        + "\n".join(
            f"cpu/event {loop + ':':<10}"
            + ", ".join(f"{part} {ms:.2f} ms" for part, ms in parts.items())
            + f" -> at most {cores * 1000 / parts['total']:,.0f} events/s on {cores} cores"
            for loop, parts in result["cpu_ms_per_event"].items()
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    print(report(run(parser.parse_args().events)))


if __name__ == "__main__":
    main()
