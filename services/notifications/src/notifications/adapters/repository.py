"""Queries over the notifications tables that more than one use case needs."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notifications.adapters.crypto import PiiVault
from notifications.adapters.tables import DeferredEventRow, MessageRow, PreferenceRow, RecipientRow

DISPATCH_CHANNEL = "notifications_dispatch"


@dataclass(frozen=True)
class Recipient:
    school_id: UUID
    name: str
    language: str
    phone: str | None
    email: str | None


async def remember_order_contact(
    session: AsyncSession,
    vault: PiiVault,
    *,
    order_id: UUID,
    school_id: UUID,
    name: str,
    language: str,
    phone: str | None,
    email: str | None,
) -> None:
    """Upsert the order's contact: the latest event that carries it wins."""
    values: dict[str, Any] = {
        "school_id": school_id,
        "order_id": order_id,
        "source": "order",
        "name": name,
        "language": language,
        "phone_enc": vault.encrypt(phone) if phone else None,
        "phone_hash": vault.blind_index(phone) if phone else None,
        "email_enc": vault.encrypt(email) if email else None,
        "email_hash": vault.blind_index(email) if email else None,
        "updated_at": datetime.now(UTC),
    }
    stmt = insert(RecipientRow.__table__).values(id=uuid4(), created_at=datetime.now(UTC), **values)  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(index_elements=["order_id"], index_where=text("source = 'order'"), set_=values)
    await session.execute(stmt)


def _decode(vault: PiiVault, row: RecipientRow) -> Recipient:
    return Recipient(
        school_id=row.school_id,
        name=row.name,
        language=row.language,
        phone=vault.decrypt(row.phone_enc) if row.phone_enc else None,
        email=vault.decrypt(row.email_enc) if row.email_enc else None,
    )


async def recipients_for(
    session: AsyncSession, vault: PiiVault, *, order_id: UUID | None, school_id: UUID | None
) -> list[Recipient]:
    """The order's contact first, then the school's registered contacts."""
    found: list[RecipientRow] = []
    if order_id is not None:
        found += (await session.scalars(select(RecipientRow).where(col(RecipientRow.order_id) == order_id))).all()
    if school_id is not None:
        found += (
            await session.scalars(
                select(RecipientRow).where(col(RecipientRow.school_id) == school_id, col(RecipientRow.source) == "api")
            )
        ).all()
    return [_decode(vault, row) for row in found]


async def school_of_order(session: AsyncSession, order_id: UUID) -> UUID | None:
    row = await session.scalar(select(RecipientRow).where(col(RecipientRow.order_id) == order_id).limit(1))
    return row.school_id if row else None


async def defer_event(
    session: AsyncSession, *, event_id: UUID, order_id: UUID, event_type: str, envelope: dict[str, Any]
) -> None:
    stmt = insert(DeferredEventRow.__table__).values(  # type: ignore[attr-defined]
        event_id=event_id, order_id=order_id, event_type=event_type, envelope=envelope, created_at=datetime.now(UTC)
    )
    await session.execute(stmt.on_conflict_do_nothing())


async def take_deferred(session: AsyncSession, order_id: UUID) -> list[DeferredEventRow]:
    rows = list(
        (
            await session.scalars(
                select(DeferredEventRow)
                .where(col(DeferredEventRow.order_id) == order_id)
                .order_by(col(DeferredEventRow.created_at))
                .with_for_update()
            )
        ).all()
    )
    if rows:
        await session.execute(delete(DeferredEventRow).where(col(DeferredEventRow.order_id) == order_id))
    return rows


async def preferences_for(session: AsyncSession, hashes: Iterable[str]) -> dict[tuple[str, str], PreferenceRow]:
    wanted = list(set(hashes))
    if not wanted:
        return {}
    rows = (await session.scalars(select(PreferenceRow).where(col(PreferenceRow.address_hash).in_(wanted)))).all()
    return {(r.address_hash, r.channel): r for r in rows}


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Idempotent on (event, recipient, channel); wakes the dispatchers when the transaction commits."""
    if not rows:
        return 0
    stmt = (
        insert(MessageRow.__table__)  # type: ignore[attr-defined]
        .values(list(rows))
        .on_conflict_do_nothing(constraint="uq_messages_event_recipient_channel")
        .returning(MessageRow.__table__.c.id)  # type: ignore[attr-defined]
    )
    inserted = len((await session.execute(stmt)).all())
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": DISPATCH_CHANNEL})
    return inserted


async def suppress_pending(session: AsyncSession, reason: str, *where: ColumnElement[bool]) -> None:
    """The messages matching `where` that are still waiting to go out are never sent."""
    await session.execute(
        update(MessageRow)
        .where(col(MessageRow.status) == "pending", *where)
        .values(status="suppressed", last_error=reason, updated_at=datetime.now(UTC))
    )
