"""The dispatcher: claims due messages, sends them outside any transaction, records the outcome.

Claiming marks rows `sending` with a lease (FOR UPDATE SKIP LOCKED, so replicas never take the same
row); a replica that dies mid-send leaves a lease that expires and the row is claimed again. The
outcome is recorded in one short transaction together with its outbox event.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.envelope import Envelope
from contracts.notifications import NotificationFailed, NotificationSent
from servicekit.db import Database
from servicekit.outbox import add_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.crypto import PiiVault
from notifications.adapters.repository import DISPATCH_CHANNEL, preferences_for
from notifications.service_layer.preferences import HELD_FOR_QUIET_HOURS, QuietHours
from notifications.service_layer.reports import apply_waiting_reports
from notifications.service_layer.sending import Attempt, OutgoingMessage, Sender, SendOutcome
from notifications.service_layer.worker import NotifiedWorker

log = logging.getLogger(__name__)

_CLAIM = text(
    """
    UPDATE messages SET status = 'sending', lease_until = now() + make_interval(secs => :lease), updated_at = now()
    WHERE id IN (
        SELECT id FROM messages
        WHERE (status = 'pending' AND next_attempt_at <= now())
           OR (status = 'sending' AND lease_until < now())
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, event_id, school_id, order_id, channel, template, address_enc, body, subject, html,
              wa_template, wa_params, attempts, recipient_hash, urgent
    """
)


class Dispatcher(NotifiedWorker):
    def __init__(
        self,
        db: Database,
        sender: Sender,
        vault: PiiVault,
        *,
        dsn: str,
        batch_size: int,
        concurrency: int,
        poll_seconds: float,
        lease_seconds: float,
        retry_delays_s: list[float],
        quiet_hours: QuietHours,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(dsn=dsn, channel=DISPATCH_CHANNEL, poll_seconds=poll_seconds, name="notifications-dispatcher")
        self.db, self.sender, self.vault = db, sender, vault
        self.batch_size, self.lease_seconds = batch_size, lease_seconds
        self.retry_delays_s = retry_delays_s
        self.quiet_hours = quiet_hours
        self.clock = clock
        self._limit = asyncio.Semaphore(concurrency)

    async def work_once(self) -> int:
        return await self.dispatch_once()

    async def dispatch_once(self) -> int:
        """Claim one batch and deliver it; returns how many messages were handled.

        Outcomes are recorded as they come in, in group commits: whatever finished while the previous
        group was being written goes into the next transaction, so one commit covers many sends.
        """
        async with self.db.transaction() as session:
            rows = (
                (await session.execute(_CLAIM, {"lease": self.lease_seconds, "limit": self.batch_size}))
                .mappings()
                .all()
            )
        done: asyncio.Queue[tuple[dict[str, Any], SendOutcome]] = asyncio.Queue()

        async def send(row: dict[str, Any]) -> None:
            await done.put((row, await self._send(row)))

        sending = asyncio.gather(*(send(dict(row)) for row in rows))
        recorded = 0
        try:
            while recorded < len(rows):
                group = [await done.get()]
                while not done.empty():
                    group.append(done.get_nowait())
                await self._record(group)
                recorded += len(group)
        finally:
            await sending
        return len(rows)

    async def _send(self, row: dict[str, Any]) -> SendOutcome:
        async with self._limit:
            message = OutgoingMessage(
                reference=str(row["id"]),
                channel=row["channel"],
                address=self.vault.decrypt(row["address_enc"]),
                body=row["body"],
                subject=row["subject"],
                html=row["html"],
                wa_template=row["wa_template"],
                wa_params=row["wa_params"] or [],
            )
            try:
                return await self.sender.send(message)
            except Exception as exc:  # an adapter bug must not leave the row leased forever
                log.exception("sending %s crashed", row["id"])
                outcome = SendOutcome()
                outcome.attempts.append(_crash(message.channel, exc))
                return outcome

    async def _record(self, group: list[tuple[dict[str, Any], SendOutcome]]) -> None:
        now = self.clock()
        async with self.db.transaction() as session:
            for row, outcome in sorted(group, key=lambda pair: _lock_key(pair[1])):
                await self._record_one(session, row, outcome, now)

    async def _record_one(
        self, session: AsyncSession, row: dict[str, Any], outcome: SendOutcome, now: datetime
    ) -> None:
        for attempt in outcome.attempts:
            await session.execute(
                text(
                    "INSERT INTO message_attempts (message_id, provider, outcome, provider_message_id, error, "
                    "attempted_at) VALUES (:m, :p, :o, :pm, :e, :at)"
                ),
                {
                    "m": row["id"],
                    "p": attempt.provider,
                    "o": attempt.outcome,
                    "pm": attempt.provider_message_id,
                    "e": attempt.error,
                    "at": now,
                },
            )
        if outcome.accepted is not None:
            accepted = outcome.accepted
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:pmid))"), {"pmid": accepted.provider_message_id}
            )
            await session.execute(
                text(
                    "UPDATE messages SET status = 'sent', provider = :p, provider_message_id = :pm, "
                    "attempts = attempts + 1, lease_until = NULL, last_error = NULL, updated_at = :now "
                    "WHERE id = :id"
                ),
                {"p": accepted.provider, "pm": accepted.provider_message_id, "now": now, "id": row["id"]},
            )
            await add_event(
                session,
                Envelope.wrap(
                    NotificationSent(
                        message_id=row["id"],
                        order_id=row["order_id"],
                        channel=row["channel"],
                        provider=accepted.provider,
                        template=row["template"],
                        recipient_hash=row["recipient_hash"],
                    ),
                    causation_id=row["event_id"],
                    school_id=row["school_id"],
                ),
            )
            await apply_waiting_reports(session, accepted.provider, accepted.provider_message_id)
            return
        if outcome.only_rate_limited:
            due = now + timedelta(seconds=self.sender.limiter.next_window_in())
            due, error = await self._outside_quiet_hours(session, row, due, "rate limited on every provider")
            await session.execute(
                text(
                    "UPDATE messages SET status = 'pending', next_attempt_at = :due, lease_until = NULL, "
                    "last_error = :e, updated_at = :now WHERE id = :id"
                ),
                {"due": due, "e": error, "now": now, "id": row["id"]},
            )
            return
        attempts = row["attempts"] + 1
        error = "; ".join(f"{a.provider}: {a.error or a.outcome}" for a in outcome.attempts)[:1000]
        if attempts > len(self.retry_delays_s):
            await session.execute(
                text(
                    "UPDATE messages SET status = 'failed', attempts = :n, lease_until = NULL, last_error = :e, "
                    "updated_at = :now WHERE id = :id"
                ),
                {"n": attempts, "e": error, "now": now, "id": row["id"]},
            )
            await add_event(
                session,
                Envelope.wrap(
                    NotificationFailed(
                        message_id=row["id"],
                        order_id=row["order_id"],
                        channel=row["channel"],
                        template=row["template"],
                        reason=error[:500],
                    ),
                    causation_id=row["event_id"],
                    school_id=row["school_id"],
                ),
            )
            return
        due = now + timedelta(seconds=self.retry_delays_s[attempts - 1])
        due, error = await self._outside_quiet_hours(session, row, due, error)
        await session.execute(
            text(
                "UPDATE messages SET status = 'pending', attempts = :n, next_attempt_at = :due, "
                "lease_until = NULL, last_error = :e, updated_at = :now WHERE id = :id"
            ),
            {"n": attempts, "due": due, "e": error, "now": now, "id": row["id"]},
        )

    async def _outside_quiet_hours(
        self, session: AsyncSession, row: dict[str, Any], due: datetime, error: str
    ) -> tuple[datetime, str]:
        """A retry is planned again like a new message: one that would fall in quiet hours waits for their end."""
        key = (row["recipient_hash"], row["channel"])
        preference = (await preferences_for(session, [row["recipient_hash"]])).get(key)
        release = self.quiet_hours.release(preference, row["urgent"], due)
        if release is None:
            return due, error
        return release, f"{error}; {HELD_FOR_QUIET_HOURS}"[:1000]


def _lock_key(outcome: SendOutcome) -> str:
    """Advisory locks taken in one order across a group, so two writers can never deadlock."""
    return outcome.accepted.provider_message_id if outcome.accepted else ""


def _crash(channel: str, exc: Exception) -> Attempt:
    return Attempt(channel, "error", error=f"{type(exc).__name__}: {exc}"[:500])
