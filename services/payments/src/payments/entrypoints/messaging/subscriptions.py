"""What the payments service listens to: each handler only turns an event into a use case."""

from typing import Any

from contracts.envelope import Envelope
from contracts.orders import OrderCancelled, OrderCreated, OrderStatusChanged
from servicekit.consumer import Subscription
from sqlalchemy.ext.asyncio import AsyncSession

from payments.service_layer import plans

CONSUMER = "payments"


async def order_created(envelope: Envelope[OrderCreated], session: AsyncSession) -> None:
    await plans.create_plan(session, envelope)


async def order_status_changed(envelope: Envelope[OrderStatusChanged], session: AsyncSession) -> None:
    await plans.on_status_changed(session, envelope)


async def order_cancelled(envelope: Envelope[OrderCancelled], session: AsyncSession) -> None:
    await plans.on_cancelled(session, envelope)


SUBSCRIPTIONS: list[Subscription[Any]] = [
    Subscription(CONSUMER, OrderCreated, order_created),
    Subscription(CONSUMER, OrderStatusChanged, order_status_changed),
    Subscription(CONSUMER, OrderCancelled, order_cancelled),
]
