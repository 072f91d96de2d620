"""Versioned message contracts shared by every OneClass service (pydantic only, no I/O)."""

from contracts.envelope import Envelope, Payload, RawEnvelope
from contracts.money import Money

__all__ = ["Envelope", "Money", "Payload", "RawEnvelope"]
