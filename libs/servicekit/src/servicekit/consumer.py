"""The consumer runtime: one explicit list of subscriptions per service, each made safe the same way.

For every delivery: decode the envelope (malformed → parked), claim it in the inbox and run the
handler in one transaction (duplicate → no-op; deliveries in flight together share that transaction,
see `inbox_batcher`), and on failure retry through the delay queues, then park with the reason in the
headers. The handler only translates an event into a use case.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from contracts.envelope import Envelope, Payload
from faststream.middlewares import AckPolicy
from faststream.rabbit import RabbitBroker
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit import metrics
from servicekit.db import Database
from servicekit.errors import PermanentError
from servicekit.inbox_batcher import InboxBatcher, apply_alone
from servicekit.topology import Naming, events_exchange, main_queue

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Payload)

Handler = Callable[[Envelope[P], AsyncSession], Awaitable[None]]

RETRY_HEADER = "x-retry-count"


@dataclass(frozen=True)
class Subscription(Generic[P]):
    """`consumer` names the subscriber (`payments`), `message` what it listens to."""

    consumer: str
    message: type[P]
    handler: Handler[P]
    # Deliveries may share one transaction (see inbox_batcher); off for handlers that run long or reach
    # outside the database, where re-running after another message's failure would cost too much.
    batch: bool = True

    @property
    def message_type(self) -> type[Envelope[P]]:
        return Envelope[self.message]  # type: ignore[name-defined]

    def queue_name(self, naming: Naming) -> str:
        return naming.queue(self.consumer, f"{self.message.event_type()}.v{self.message.version}")


async def _raw_body(msg: Any) -> Any:
    """Decoder that hands over the undecoded bytes: we parse (and park) malformed bodies ourselves."""
    return msg.body


class ConsumerRuntime:
    def __init__(
        self,
        broker: RabbitBroker,
        db: Database,
        naming: Naming,
        *,
        retry_delays_ms: list[int],
        delivery_limit: int,
        max_batch: int = 1,
    ) -> None:
        self.broker = broker
        self.db = db
        self.naming = naming
        self.retry_delays_ms = list(retry_delays_ms)
        self.delivery_limit = delivery_limit
        self.max_batch = max_batch
        self.subscriptions: list[Subscription[Any]] = []
        self._batchers: dict[int, InboxBatcher] = {}

    def register(self, subscriptions: list[Subscription[Any]]) -> None:
        for sub in subscriptions:
            self._register(sub)

    def _register(self, sub: Subscription[Any]) -> None:
        queue_name = sub.queue_name(self.naming)
        queue = main_queue(self.naming, queue_name, sub.message.routing_key(), self.delivery_limit)

        async def consume(body: Any) -> None:
            # The message comes from the broker's context rather than a `RabbitMessage` parameter: fast_depends
            # resolves such a parameter in a worker thread, which cost more than the rest of the delivery.
            await self.process(sub, queue_name, body, self.broker.context.get_local("message"))

        # Documented as the envelope (AsyncAPI); at run time the decoder hands over the raw bytes,
        # which pydantic's smart union keeps as bytes, so parsing and parking stay ours.
        consume.__annotations__["body"] = Envelope[sub.message] | bytes  # type: ignore[name-defined]

        self.broker.subscriber(
            queue,
            events_exchange(self.naming),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=_raw_body,
            title=queue_name,
            description=f"{sub.consumer} consumes {sub.message.routing_key()}",
        )(consume)
        self.subscriptions.append(sub)

    def _batcher(self, sub: Subscription[Any]) -> InboxBatcher:
        batcher = self._batchers.get(id(sub))
        if batcher is None:
            batcher = InboxBatcher(self.db, sub.consumer, sub.handler, max_batch=self.max_batch)
            self._batchers[id(sub)] = batcher
        return batcher

    async def stop(self) -> None:
        """After the subscribers stopped: nothing is in flight any more."""
        for batcher in self._batchers.values():
            await batcher.stop()
        self._batchers.clear()

    def queue_names(self) -> list[str]:
        return [s.queue_name(self.naming) for s in self.subscriptions]

    async def process(self, sub: Subscription[Any], queue: str, body: bytes, message: Any) -> None:
        try:
            envelope = sub.message_type.model_validate_json(body)
            if envelope.schema_version != sub.message.version or envelope.event_type != sub.message.event_type():
                raise PermanentError(f"unexpected {envelope.event_type} v{envelope.schema_version}")
        except (ValidationError, ValueError, PermanentError) as exc:
            await self._park(sub, queue, body, message, f"malformed message: {_short(exc)}")
            return
        try:
            if sub.batch and self.max_batch > 1:
                fresh = await self._batcher(sub).apply(envelope)
            else:
                fresh = await apply_alone(self.db, sub.consumer, sub.handler, envelope)
            if not fresh:
                metrics.INBOX_DUPLICATES.labels(sub.consumer).inc()
                log.info("duplicate %s %s skipped", envelope.event_type, envelope.event_id)
                return
            metrics.MESSAGES_HANDLED.labels(sub.consumer).inc()
        except PermanentError as exc:
            await self._park(sub, queue, body, message, f"rejected: {_short(exc)}")
        except Exception as exc:
            await self._retry_or_park(sub, queue, body, message, exc)

    async def _retry_or_park(
        self, sub: Subscription[Any], queue: str, body: bytes, message: Any, exc: Exception
    ) -> None:
        attempt = int((message.headers or {}).get(RETRY_HEADER, 0))
        if attempt >= len(self.retry_delays_ms):
            await self._park(sub, queue, body, message, f"failed after {attempt} retries: {_short(exc)}")
            return
        delay = self.retry_delays_ms[attempt]
        log.warning("%s failed (attempt %d), retrying in %d ms: %s", queue, attempt + 1, delay, exc)
        metrics.MESSAGES_RETRIED.labels(sub.consumer).inc()
        await self._republish(
            body,
            message,
            Naming.retry_queue(queue, delay),
            {RETRY_HEADER: attempt + 1, "x-last-error": _short(exc)},
        )

    async def _park(self, sub: Subscription[Any], queue: str, body: bytes, message: Any, reason: str) -> None:
        log.error("parking message %s from %s: %s", message.message_id, queue, reason)
        metrics.MESSAGES_PARKED.labels(sub.consumer).inc()
        await self._republish(
            body,
            message,
            Naming.parking_queue(queue),
            {
                "x-parked-reason": reason,
                "x-original-queue": queue,
                "x-original-routing-key": message.raw_message.routing_key or "",
                "x-exception": traceback.format_exc(limit=3)[-1000:],
            },
        )

    async def _republish(self, body: bytes, message: Any, queue: str, extra: dict[str, Any]) -> None:
        """To a delay or parking queue through the default exchange, confirmed before the ack."""
        headers = {**(message.headers or {}), **extra}
        await self.broker.publish(
            body,
            routing_key=queue,
            headers=headers,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            content_type=message.content_type or "application/json",
            persist=True,
            mandatory=True,
            timeout=10.0,
        )


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
