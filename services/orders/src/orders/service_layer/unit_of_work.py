# SQLModel columns are typed as their Python values, so SQL expressions on them do not type-check.
# mypy: disable-error-code="arg-type, call-overload, attr-defined, union-attr, return-value, misc"
"""One unit of work: a transaction that knows who acts, publishes through the outbox and writes the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from contracts.envelope import Envelope, Payload
from opentelemetry import trace
from servicekit.auth import Principal
from servicekit.db import insert_rows
from servicekit.outbox import add_event
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters.tables import AuditLogRow
from orders.adapters.tenancy import set_tenant


@dataclass(frozen=True)
class Actor:
    sub: str
    role: str  # platform_admin | school_admin | team_member | system (event consumers)
    school_id: UUID | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(sub=principal.sub, role=principal.role, school_id=principal.school_id)

    @property
    def is_admin(self) -> bool:
        return self.role in ("platform_admin", "system")


SYSTEM = Actor(sub="system", role="system")


class UnitOfWork:
    def __init__(self, session: AsyncSession, actor: Actor, *, causation: Envelope[Any] | None = None) -> None:
        self.session = session
        self.actor = actor
        self.causation = causation

    async def begin(self) -> UnitOfWork:
        await set_tenant(self.session, role=self.actor.role, school_id=self.actor.school_id, user=self.actor.sub)
        return self

    async def publish(self, payload: Payload, *, school_id: UUID | None, correlation_id: UUID | None = None) -> None:
        """Into the outbox, in this transaction: published only if the change commits."""
        if self.causation is not None:
            envelope = self.causation.follow_up(payload, school_id=school_id)
        else:
            envelope = Envelope.wrap(payload, school_id=school_id, correlation_id=correlation_id)
        await add_event(self.session, envelope)

    async def audit(
        self,
        entity: str,
        entity_id: object,
        action: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        span = trace.get_current_span().get_span_context()
        # No RETURNING (insert_rows reads nothing back): most roles may append audit entries but not read them.
        entry = {
            "actor": self.actor.sub,
            "actor_role": self.actor.role,
            "entity": entity,
            "entity_id": str(entity_id),
            "action": action,
            "before": before,
            "after": after,
            "trace_id": f"{span.trace_id:032x}" if span.is_valid else None,
        }
        await insert_rows(self.session, AuditLogRow.__table__, [entry])
