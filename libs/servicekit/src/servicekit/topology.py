"""Names and declaration of the shared RabbitMQ topology.

Per consumer subscription `<consumer>.<event>`:
- a quorum queue bound to the events exchange, with a delivery limit; what exceeds it (a crash
  loop, a handler that never acks) is dead-lettered to the parking queue by the broker itself;
- one delay queue per retry step (`<queue>.retry.<ms>ms`): a durable message-TTL queue that
  dead-letters back into the main queue through the default exchange: retry with growing delay;
- a parking queue (`<queue>.parking`) an operator lists and replays (`servicekit-parking`).
Declaration is idempotent; the delay is in the queue name so changing it never clashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.routing import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue


@dataclass(frozen=True)
class Naming:
    namespace: str = ""

    @property
    def events_exchange(self) -> str:
        return f"{self.namespace}{EVENTS_EXCHANGE}"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.namespace}{DEAD_LETTER_EXCHANGE}"

    def queue(self, consumer: str, event: str) -> str:
        return f"{self.namespace}{consumer}.{event}"

    @staticmethod
    def retry_queue(queue: str, delay_ms: int) -> str:
        return f"{queue}.retry.{delay_ms}ms"

    @staticmethod
    def parking_queue(queue: str) -> str:
        return f"{queue}.parking"


def events_exchange(naming: Naming) -> RabbitExchange:
    return RabbitExchange(naming.events_exchange, type=ExchangeType.TOPIC, durable=True)


def dead_letter_exchange(naming: Naming) -> RabbitExchange:
    return RabbitExchange(naming.dead_letter_exchange, type=ExchangeType.DIRECT, durable=True)


def main_queue(naming: Naming, name: str, routing_key: str, delivery_limit: int) -> RabbitQueue:
    arguments: Any = {
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": naming.dead_letter_exchange,
        "x-dead-letter-routing-key": name,
        # at-least-once dead-lettering: the broker keeps the message until the parking queue has it.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, arguments=arguments, routing_key=routing_key)


def retry_queue(queue: str, delay_ms: int) -> RabbitQueue:
    """A delay queue: classic and durable, since it only holds messages for a TTL and every quorum
    queue is a Raft group of its own (thousands of them slow a broker's start to a crawl)."""
    arguments: Any = {
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
    }
    return RabbitQueue(Naming.retry_queue(queue, delay_ms), durable=True, arguments=arguments)


def parking_queue(queue: str) -> RabbitQueue:
    return RabbitQueue(Naming.parking_queue(queue), queue_type=QueueType.QUORUM, durable=True, routing_key=queue)


async def declare_subscription_topology(
    broker: RabbitBroker, naming: Naming, queue: str, retry_delays_ms: list[int]
) -> None:
    """Everything around one subscription's main queue (the subscriber declares the queue itself)."""
    dlx = await broker.declare_exchange(dead_letter_exchange(naming))
    parked = await broker.declare_queue(parking_queue(queue))
    await parked.bind(dlx, routing_key=queue)
    for delay in retry_delays_ms:
        await broker.declare_queue(retry_queue(queue, delay))


async def declare_exchanges(broker: RabbitBroker, naming: Naming) -> None:
    await broker.declare_exchange(events_exchange(naming))
    await broker.declare_exchange(dead_letter_exchange(naming))
