"""Inbox: an event's effect happens once per consumer, however often it arrives."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.tables import inbox


async def claim(session: AsyncSession, consumer: str, event_id: UUID, event_type: str) -> bool:
    """Record the event as processed in the caller's transaction; False when it already was.

    A concurrent duplicate blocks on the primary key until the first transaction ends, then
    sees the conflict: two replicas cannot both apply the same event.
    """
    result = await session.execute(
        insert(inbox)
        .values(consumer=consumer, event_id=event_id, event_type=event_type)
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    return result.first() is not None
