"""Inbox: an event's effect happens once per consumer, however often it arrives."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
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


_CLAIM_MANY = text(
    """
    INSERT INTO inbox (consumer, event_id, event_type)
    SELECT :consumer, e, t FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[])) AS u(e, t)
    ON CONFLICT DO NOTHING RETURNING event_id
    """
)


async def claim_many(session: AsyncSession, consumer: str, events: list[tuple[UUID, str]]) -> set[UUID]:
    """`claim` for several events in one statement; returns the ids not processed before."""
    result = await session.execute(
        _CLAIM_MANY, {"consumer": consumer, "ids": [e for e, _ in events], "types": [t for _, t in events]}
    )
    return set(result.scalars())
