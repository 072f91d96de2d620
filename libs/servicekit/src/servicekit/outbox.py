"""Transactional outbox: events are rows written with the state change, published later by the relay."""

from __future__ import annotations

from typing import Any

from contracts.envelope import Envelope, Payload
from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import OUTBOX_WRITTEN
from servicekit.tables import outbox

_INSERT = outbox.insert()


def serialise(envelope: Envelope[Any]) -> dict[str, Any]:
    return envelope.model_dump(mode="json")


async def add_event(session: AsyncSession, envelope: Envelope[Any]) -> None:
    """Add an event to the caller's transaction; it is published only if that transaction commits.

    The current trace context is stored with it so the relay's publish continues the same trace.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    headers = {**carrier, "correlation_id": str(envelope.correlation_id)}
    session.info[OUTBOX_WRITTEN] = True
    # One statement object with parameters (not `.values(...)` per call): compiled once, then cached.
    await session.execute(
        _INSERT,
        {
            "event_id": envelope.event_id,
            "routing_key": envelope.routing_key,
            "body": serialise(envelope),
            "headers": headers,
        },
    )


async def add_events(session: AsyncSession, envelopes: list[Envelope[Any]]) -> None:
    for envelope in envelopes:
        await add_event(session, envelope)


def envelope_for(payload: Payload, **kwargs: Any) -> Envelope[Any]:
    return Envelope.wrap(payload, **kwargs)
