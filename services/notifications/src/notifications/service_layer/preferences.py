"""Recipient preferences: channel opt-out (and STOP replies), quiet hours."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notifications.adapters import repository
from notifications.adapters.crypto import PiiVault
from notifications.adapters.tables import MessageRow, PreferenceRow
from notifications.domain.quiet_hours import release_time

# STOP in English, Shona ("mira" = stop) and Ndebele ("yima" = stop), plus the usual carrier keywords.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "MIRA", "YIMA"})


OPTED_OUT = "recipient opted out of this channel"
HELD_FOR_QUIET_HOURS = "held for quiet hours"


@dataclass(frozen=True)
class QuietHours:
    """The platform's quiet window (none unless configured) and zone; a recipient's own preference wins."""

    start: int | None
    end: int | None
    timezone: str

    def release(self, preference: PreferenceRow | None, urgent: bool, at: datetime) -> datetime | None:
        """When a message due `at` may go out instead, or None when nothing holds it back."""
        start: int | None
        end: int | None
        if preference is not None and preference.quiet_start is not None and preference.quiet_end is not None:
            start, end = preference.quiet_start, preference.quiet_end
        else:
            start, end = self.start, self.end
        if urgent or start is None or end is None:
            return None
        zone = (preference.timezone if preference else None) or self.timezone
        return release_time(at, start, end, zone)


def is_stop(text: str) -> bool:
    words = text.strip().upper().split()
    return bool(words) and words[0] in STOP_WORDS


async def set_preference(
    session: AsyncSession,
    address_hash: str,
    channel: str,
    *,
    opted_out: bool | None = None,
    quiet_start: int | None = None,
    quiet_end: int | None = None,
    timezone: str | None = None,
) -> None:
    values = {
        "opted_out": bool(opted_out),
        "quiet_start": quiet_start,
        "quiet_end": quiet_end,
        "timezone": timezone,
        "updated_at": datetime.now(UTC),
    }
    update = {k: v for k, v in values.items() if k == "updated_at" or (k == "opted_out" and opted_out is not None)}
    if quiet_start is not None or quiet_end is not None:
        update |= {"quiet_start": quiet_start, "quiet_end": quiet_end, "timezone": timezone}
    elif timezone is not None:  # the same quiet hours, read in another zone
        update["timezone"] = timezone
    stmt = insert(PreferenceRow.__table__).values(address_hash=address_hash, channel=channel, **values)  # type: ignore[attr-defined]
    await session.execute(stmt.on_conflict_do_update(index_elements=["address_hash", "channel"], set_=update))
    if opted_out:
        # Planned before the opt-out and not sent yet (due, held for quiet hours or waiting to retry): never sent.
        await repository.suppress_pending(
            session, OPTED_OUT, col(MessageRow.recipient_hash) == address_hash, col(MessageRow.channel) == channel
        )


async def handle_reply(session: AsyncSession, vault: PiiVault, address: str, text: str) -> bool:
    if not is_stop(text):
        return False
    await set_preference(session, vault.blind_index(address), "sms", opted_out=True)
    return True
