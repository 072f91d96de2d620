"""Wrapping the events this service publishes."""

from typing import Any
from uuid import UUID

from contracts.envelope import Envelope, Payload


def follow_up(cause: Envelope[Any], payload: Payload, *, school_id: UUID | None = None) -> Envelope[Any]:
    """An event caused by another: same conversation, causation points at the cause."""
    return Envelope.wrap(
        payload,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
        school_id=school_id or cause.school_id,
    )


def new_event(payload: Payload, *, school_id: UUID, correlation_id: UUID | None = None) -> Envelope[Any]:
    """An event that starts from a provider's webhook or a person's request, not from another event."""
    return Envelope.wrap(payload, school_id=school_id, correlation_id=correlation_id)
