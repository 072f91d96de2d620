"""What the notifications service listens to: every event in the routing table, one queue each."""

from collections.abc import Awaitable, Callable
from typing import Any

from contracts.envelope import Envelope
from servicekit.consumer import Subscription
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.domain.routing import ROUTES

CONSUMER = "notifications"


EventHandler = Callable[[Envelope[Any], AsyncSession], Awaitable[None]]


def build_subscriptions(*handlers: EventHandler) -> list[Subscription[Any]]:
    """Each event goes through every handler (messages, then outbound webhooks) in one inbox transaction."""

    async def handle(envelope: Envelope[Any], session: AsyncSession) -> None:
        for handler in handlers:
            await handler(envelope, session)

    return [Subscription(CONSUMER, route.message, handle) for route in ROUTES]
