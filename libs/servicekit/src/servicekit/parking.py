"""Operator tools for parking queues: look at what was parked and why, and replay it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika

from servicekit.consumer import RETRY_HEADER

_OPERATIONAL_HEADERS = (
    RETRY_HEADER,
    "x-last-error",
    "x-parked-reason",
    "x-exception",
    "x-death",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-first-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-last-death-exchange",
    "x-delivery-count",
)


@dataclass(frozen=True)
class ParkedMessage:
    message_id: str | None
    reason: str
    original_queue: str
    body: bytes
    headers: dict[str, Any]


def _describe(message: aio_pika.abc.AbstractIncomingMessage, queue: str) -> ParkedMessage:
    headers = dict(message.headers or {})
    reason = str(headers.get("x-parked-reason") or headers.get("x-first-death-reason") or "unknown")
    original = str(headers.get("x-original-queue") or queue.removesuffix(".parking"))
    return ParkedMessage(message.message_id, reason, original, message.body, headers)


async def list_parked(amqp_url: str, parking_queue: str, limit: int = 100) -> list[ParkedMessage]:
    """Read without removing: every message fetched is returned to the queue when the channel closes."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(parking_queue, ensure=True)
        found: list[ParkedMessage] = []
        for _ in range(limit):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(_describe(message, parking_queue))
        await channel.close()  # unacked messages go back, in order
    return found


async def replay(amqp_url: str, parking_queue: str, limit: int | None = None) -> int:
    """Move parked messages back to their original queue with a fresh retry budget."""
    connection = await aio_pika.connect(amqp_url)
    moved = 0
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.get_queue(parking_queue, ensure=True)
        while limit is None or moved < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            parked = _describe(message, parking_queue)
            headers = {k: v for k, v in parked.headers.items() if k not in _OPERATIONAL_HEADERS}
            headers["x-replayed-from"] = parking_queue
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    message_id=message.message_id,
                    correlation_id=message.correlation_id,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=parked.original_queue,
                mandatory=True,
            )
            await message.ack()
            moved += 1
    return moved
