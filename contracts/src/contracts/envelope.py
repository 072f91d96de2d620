"""The envelope every message on the bus carries, whatever its payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    """Base of every event payload. Subclasses name their routing key parts.

    Unknown fields are ignored so that a producer may add fields (additive evolution)
    without breaking consumers still on the older model.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    producer: ClassVar[str]
    event: ClassVar[str]
    version: ClassVar[int] = 1
    is_command: ClassVar[bool] = False

    @classmethod
    def event_type(cls) -> str:
        middle = f"cmd.{cls.event}" if cls.is_command else cls.event
        return f"{cls.producer}.{middle}"

    @classmethod
    def routing_key(cls) -> str:
        return f"{cls.event_type()}.v{cls.version}"


P = TypeVar("P", bound=Payload)


class Envelope(BaseModel, Generic[P]):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    correlation_id: UUID
    causation_id: UUID | None = None
    school_id: UUID | None = None
    data: P

    @property
    def routing_key(self) -> str:
        return f"{self.event_type}.v{self.schema_version}"

    @classmethod
    def wrap(
        cls,
        data: P,
        *,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        school_id: UUID | None = None,
        event_id: UUID | None = None,
    ) -> Envelope[P]:
        """Wrap a payload; a new conversation gets its own event id as correlation id."""
        new_id = event_id or uuid4()
        return Envelope[type(data)](  # type: ignore[misc,operator]
            event_id=new_id,
            event_type=data.event_type(),
            schema_version=data.version,
            producer=data.producer,
            correlation_id=correlation_id or new_id,
            causation_id=causation_id,
            school_id=school_id,
            data=data,
        )

    def follow_up(self, data: P, *, school_id: UUID | None = None) -> Envelope[P]:
        """An event caused by this one: same conversation, causation points here."""
        return Envelope.wrap(
            data,
            correlation_id=self.correlation_id,
            causation_id=self.event_id,
            school_id=school_id if school_id is not None else self.school_id,
        )


class RawEnvelope(BaseModel):
    """An envelope whose payload is not decoded yet: what a consumer first parses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    producer: str
    correlation_id: UUID
    causation_id: UUID | None = None
    school_id: UUID | None = None
    data: dict[str, Any]

    def decode(self, payload_type: type[P]) -> Envelope[P]:
        return Envelope[payload_type](  # type: ignore[valid-type]
            **self.model_dump(exclude={"data"}), data=payload_type.model_validate(self.data)
        )
