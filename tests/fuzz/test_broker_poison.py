"""Malformed, oversized, wrongly encoded, wrong-type and unknown-version messages published straight
onto every consumer's queue: each is parked with a reason, nothing is left unacked, and the consumers
keep consuming real traffic afterwards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import uuid4

import aio_pika
import httpx
import pytest
from servicekit.parking import list_parked
from servicekit.testing import AMQP_URL

from tests.faults.harness import Workload, eventually, namespace_queue_depths, say, settle_and_check
from tests.support.system import System

pytestmark = pytest.mark.e2e


def _envelope(event_type: str, version: int, data: object) -> dict[str, object]:
    return {
        "event_id": str(uuid4()),
        "event_type": event_type,
        "schema_version": version,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "fuzzer",
        "correlation_id": str(uuid4()),
        "school_id": str(uuid4()),
        "data": data,
    }


def _event_type(routing_key: str) -> str:
    return routing_key.rsplit(".", 1)[0]


POISON: dict[str, Callable[[str], bytes]] = {
    "not json": lambda rk: b"\x00\xff{not json at all",
    "json, not an envelope": lambda rk: b'{"hello": "world"}',
    "empty body": lambda rk: b"",
    "utf-16 encoded": lambda rk: json.dumps(_envelope(_event_type(rk), 1, {})).encode("utf-16"),
    "latin-1 bytes in a string": lambda rk: (
        json.dumps(_envelope(_event_type(rk), 1, {})).encode().replace(b'"fuzzer"', b'"fu\xe9zer"')
    ),
    "unknown schema version": lambda rk: json.dumps(_envelope(_event_type(rk), 99, {})).encode(),
    "wrong event type": lambda rk: json.dumps(_envelope("nobody.nothing_happened", 1, {})).encode(),
    "payload of the wrong shape": lambda rk: json.dumps(
        _envelope(_event_type(rk), 1, {"order_id": "not-a-uuid", "amount": "lots"})
    ).encode(),
    "oversized (2 MiB)": lambda rk: json.dumps(_envelope(_event_type(rk), 1, {"pad": "x" * (2 << 20)})).encode(),
    "deeply nested": lambda rk: (b'{"data":' * 5000) + b"1" + (b"}" * 5000),
}


def _consumer_queues(system: System) -> dict[str, str]:
    """Main consumer queue -> the routing key it is bound to (`<ns><consumer>.<routing key>`)."""
    queues = {}
    for name in namespace_queue_depths(system):
        if name.endswith(".parking") or ".retry" in name:
            continue
        consumer_and_key = name.removeprefix(system.namespace)
        queues[name] = consumer_and_key.split(".", 1)[1]
    return queues


async def _publish(queue: str, bodies: list[bytes]) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for body in bodies:
            await channel.default_exchange.publish(
                aio_pika.Message(body, message_id=str(uuid4()), content_type="application/json"),
                routing_key=queue,
                mandatory=True,
            )


def test_every_consumer_parks_poison_with_a_reason_and_keeps_going(fuzz_system: System) -> None:
    system = fuzz_system
    queues = _consumer_queues(system)
    assert len(queues) >= 5, f"expected the services' consumer queues, found {sorted(queues)}"
    for queue, routing_key in queues.items():
        asyncio.run(_publish(queue, [make(routing_key) for make in POISON.values()]))
    say(f"poison: {len(POISON)} kinds x {len(queues)} consumer queues = {len(POISON) * len(queues)} messages")

    def all_parked() -> dict[str, list[str]] | None:
        found = {}
        for queue in queues:
            parked = asyncio.run(list_parked(AMQP_URL, f"{queue}.parking", limit=len(POISON) + 5))
            if len(parked) < len(POISON):
                return None
            found[queue] = [p.reason for p in parked]
        return found

    reasons = eventually(all_parked, timeout=120)
    for queue, queue_reasons in reasons.items():
        assert len(queue_reasons) == len(POISON), (queue, queue_reasons)
        assert all(r and r != "unknown" for r in queue_reasons), (queue, queue_reasons)
    say("poison: every message parked with a reason, e.g. " + "; ".join(reasons[next(iter(reasons))][:3]))

    # the consumers still work: real orders flow through payments and notifications afterwards
    workload = Workload(system, pay_every=2)

    with httpx.Client(timeout=30) as client:
        for n in range(4):
            workload.step(client, pay=n % 2 == 1)
    assert not workload.server_errors, workload.server_errors
    ledger = settle_and_check(system, workload.placed)
    say(f"poison: afterwards {ledger.summary()}")
    assert ledger.lost == ledger.doubled == ledger.leaked == 0, ledger
    assert all(n == len(POISON) for n in ledger.parked.values()), ledger.parked
