"""Transactional outbox: events are rows written with the state change, published later by the relay."""

from __future__ import annotations

import json
from typing import Any

from contracts.envelope import Envelope, Payload
from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import OUTBOX_WRITTEN, driver_connection

# Straight to the driver, on the session's own connection and transaction: the statement is prepared once
# per connection and the JSON is serialised once, where SQLAlchemy's execute path cost several times more CPU.
_INSERT = "INSERT INTO outbox (event_id, routing_key, body, headers) VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb)"


async def add_event(session: AsyncSession, envelope: Envelope[Any]) -> None:
    """Add an event to the caller's transaction; it is published only if that transaction commits.

    The current trace context is stored with it so the relay's publish continues the same trace.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    headers = {**carrier, "correlation_id": str(envelope.correlation_id)}
    session.info[OUTBOX_WRITTEN] = True
    connection = await driver_connection(session)
    await connection.execute(
        _INSERT, envelope.event_id, envelope.routing_key, envelope.model_dump_json(), json.dumps(headers)
    )


async def add_events(session: AsyncSession, envelopes: list[Envelope[Any]]) -> None:
    for envelope in envelopes:
        await add_event(session, envelope)


def envelope_for(payload: Payload, **kwargs: Any) -> Envelope[Any]:
    return Envelope.wrap(payload, **kwargs)
