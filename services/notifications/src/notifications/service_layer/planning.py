"""Turning an event into message rows, inside the consumer's inbox transaction.

Nothing is sent here: rows are written `pending` (idempotent on event, recipient and channel) and the
dispatcher sends them after commit. A rendering failure raises PermanentError, which parks the event
with the reason: no half-rendered message is ever written.
"""

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from contracts.envelope import Envelope, RawEnvelope
from contracts.migrations import JobProgress
from servicekit.errors import PermanentError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notifications.adapters import repository
from notifications.adapters.crypto import PiiVault
from notifications.adapters.repository import Recipient
from notifications.adapters.tables import MessageRow, PreferenceRow
from notifications.adapters.templating import RenderError, Templates
from notifications.domain.phone import InvalidPhoneNumber, mask, mask_email, to_e164
from notifications.domain.routing import (
    PROGRESS_MARKS,
    ROUTES_BY_EVENT,
    WHATSAPP_PARAMS,
    Channel,
    Reminders,
    Route,
    whatsapp_template,
)
from notifications.domain.segments import split
from notifications.service_layer.preferences import HELD_FOR_QUIET_HOURS, OPTED_OUT, QuietHours
from notifications.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One message to write: where it goes and what it says (not yet encrypted)."""

    channel: Channel
    address: str
    recipient: Recipient


@dataclass
class MessageSpec:
    event_id: UUID
    event_type: str
    template: str
    variables: dict[str, Any]
    channels: tuple[Channel, ...]
    urgent: bool = False
    order_id: UUID | None = None
    school_id: UUID | None = None
    bulk_id: UUID | None = None
    send_at: datetime | None = None  # not before then (a reminder); quiet hours still apply at that time


class Planner:
    def __init__(
        self,
        settings: Settings,
        vault: PiiVault,
        templates: Templates,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.templates = templates
        self.clock = clock
        self.quiet_hours = QuietHours(settings.quiet_hours_start, settings.quiet_hours_end, settings.default_timezone)

    # --- events ----------------------------------------------------------------------------------------

    async def handle_event(self, envelope: Envelope[Any], session: AsyncSession) -> None:
        payload = envelope.data
        route = ROUTES_BY_EVENT[envelope.event_type]
        order_id: UUID | None = getattr(payload, "order_id", None)
        school_id: UUID | None = getattr(payload, "school_id", None) or envelope.school_id
        contact = getattr(payload, "contact", None)
        if order_id is not None:
            # One order's events are planned one at a time: otherwise an event that finds no contact
            # yet can be deferred while order_created (bringing the contact) commits beside it
            # without seeing that deferral, and the event would wait for a replay that never comes.
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('notifications-order:' || :order))"),
                {"order": str(order_id)},
            )
        if contact is not None and order_id is not None and school_id is not None:
            await repository.remember_order_contact(
                session,
                self.vault,
                order_id=order_id,
                school_id=school_id,
                name=contact.name,
                language=contact.language,
                phone=self._phone_or_none(contact.phone),
                email=contact.email,
            )
        await self._plan_event(route, envelope, session, order_id, school_id)
        if contact is not None and order_id is not None:
            await self._replay_deferred(session, order_id)

    async def _plan_event(
        self,
        route: Route,
        envelope: Envelope[Any],
        session: AsyncSession,
        order_id: UUID | None,
        school_id: UUID | None,
    ) -> None:
        payload = envelope.data
        template = route.template(payload)
        if template is None:
            return
        if isinstance(payload, JobProgress) and not await self._crosses_progress_mark(session, payload):
            return
        # The school of the order's contact, once order_created has brought it.
        contact_school = await repository.school_of_order(session, order_id) if order_id is not None else None
        school_id = school_id or contact_school
        recipients = await repository.recipients_for(session, self.vault, order_id=order_id, school_id=school_id)
        if order_id is not None and contact_school is None:
            # The order's contact has not arrived yet (events may come in any order): keep the event and plan
            # it again when order_created brings the contact. The school's registered contacts get it now;
            # the replay cannot send it to them twice (one message per event, recipient and channel).
            await repository.defer_event(
                session,
                event_id=envelope.event_id,
                order_id=order_id,
                event_type=envelope.event_type,
                envelope=envelope.model_dump(mode="json"),
            )
            log.info("deferred %s %s: no contact for order %s yet", envelope.event_type, envelope.event_id, order_id)
        elif not recipients:
            log.warning("no recipients for %s %s", envelope.event_type, envelope.event_id)
        if not recipients:
            return
        spec = MessageSpec(
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            template=template,
            variables=route.variables(payload),
            channels=route.channels,
            urgent=route.urgent,
            order_id=order_id,
            school_id=school_id,
        )
        specs = [spec] if route.reminders is None else self._reminders(route.reminders, spec, payload)
        if route.reminders is not None and order_id is not None:
            # A new schedule replaces the last one: its reminders not yet sent are not sent.
            await repository.suppress_pending(
                session,
                "superseded by a new schedule",
                col(MessageRow.order_id) == order_id,
                col(MessageRow.template) == template,
                col(MessageRow.event_id).not_in([s.event_id for s in specs]),
            )
        for one in specs:
            await repository.insert_messages(session, await self.build_rows(session, one, recipients))

    def _reminders(self, reminders: Reminders, spec: MessageSpec, payload: Any) -> list[MessageSpec]:
        """One message per reminder still ahead; each its own event id, so the three share no unique key."""
        moment, now = reminders.at(payload), self.clock()
        return [
            dataclasses.replace(
                spec,
                event_id=uuid5(spec.event_id, reminder.lead),
                variables={**spec.variables, "lead": reminder.lead},
                urgent=reminder.urgent,
                send_at=moment - reminder.before,
            )
            for reminder in reminders.each
            if moment - reminder.before > now
        ]

    async def _replay_deferred(self, session: AsyncSession, order_id: UUID) -> None:
        for row in await repository.take_deferred(session, order_id):
            route = ROUTES_BY_EVENT.get(row.event_type)
            if route is None:
                continue
            envelope = RawEnvelope.model_validate(row.envelope).decode(route.message)
            payload = envelope.data
            school_id = getattr(payload, "school_id", None) or envelope.school_id
            await self._plan_event(route, envelope, session, order_id, school_id)

    async def _crosses_progress_mark(self, session: AsyncSession, payload: JobProgress) -> bool:
        """Progress arrives often; only the first event past 25/50/75 % is announced, once per job."""
        reached = [m for m in PROGRESS_MARKS if payload.percent >= m]
        if not reached:
            return False
        result = await session.execute(
            text(
                "INSERT INTO job_progress_marks (job_id, mark) VALUES (:job, :mark) "
                "ON CONFLICT DO NOTHING RETURNING mark"
            ),
            {"job": payload.job_id, "mark": reached[-1]},
        )
        return result.first() is not None

    # --- rows --------------------------------------------------------------------------------------------

    def _phone_or_none(self, raw: str | None) -> str | None:
        if not raw:
            return None
        try:
            return to_e164(raw)
        except InvalidPhoneNumber as exc:
            log.warning("ignoring invalid phone number: %s", exc)
            return None

    def outgoing(self, recipients: list[Recipient], channels: tuple[Channel, ...]) -> list[Outgoing]:
        seen: set[tuple[str, str]] = set()
        result: list[Outgoing] = []
        for recipient in recipients:
            for channel in channels:
                address = recipient.email if channel == "email" else recipient.phone
                if not address or (channel, address.lower()) in seen:
                    continue
                seen.add((channel, address.lower()))
                result.append(Outgoing(channel, address, recipient))
        return result

    async def build_rows(
        self, session: AsyncSession, spec: MessageSpec, recipients: list[Recipient]
    ) -> list[dict[str, Any]]:
        targets = self.outgoing(recipients, spec.channels)
        hashes = {id(t): self.vault.blind_index(t.address) for t in targets}
        preferences = await repository.preferences_for(session, hashes.values())
        now = self.clock()
        rows = []
        for target in targets:
            variables = {"name": target.recipient.name, **spec.variables}
            try:
                rendered = self.templates.render(spec.template, target.recipient.language, variables)
            except RenderError as exc:
                raise PermanentError(str(exc)) from None
            recipient_hash = hashes[id(target)]
            preference = preferences.get((recipient_hash, target.channel))
            status, due, note = self._schedule(preference, spec.urgent, max(now, spec.send_at or now))
            wa = whatsapp_template(spec.template, rendered.language) if target.channel == "whatsapp" else None
            if target.channel == "whatsapp" and wa is None:
                continue  # no approved WhatsApp template for this message: the other channels carry it
            params = [str(variables[k]) for k in WHATSAPP_PARAMS.get(spec.template, ())] if wa else []
            rows.append(
                {
                    "id": uuid4(),
                    "event_id": spec.event_id,
                    "event_type": spec.event_type,
                    "order_id": spec.order_id,
                    "school_id": spec.school_id or target.recipient.school_id,
                    "bulk_id": spec.bulk_id,
                    "recipient_hash": recipient_hash,
                    "address_enc": self.vault.encrypt(target.address),
                    "address_masked": mask_email(target.address) if target.channel == "email" else mask(target.address),
                    "channel": target.channel,
                    "template": spec.template,
                    "language": rendered.language,
                    "urgent": spec.urgent,
                    "subject": rendered.subject if target.channel == "email" else None,
                    "body": rendered.text,
                    "html": rendered.html if target.channel == "email" else None,
                    "wa_template": f"{wa[0]}:{wa[1]}" if wa else None,
                    "wa_params": params,
                    "status": status,
                    "segments": split(rendered.text).count if target.channel == "sms" else None,
                    "attempts": 0,
                    "last_error": note,
                    "next_attempt_at": due,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return rows

    def _schedule(
        self, preference: PreferenceRow | None, urgent: bool, now: datetime
    ) -> tuple[str, datetime, str | None]:
        if preference is not None and preference.opted_out:
            return "suppressed", now, OPTED_OUT
        release = self.quiet_hours.release(preference, urgent, now)
        if release is None:
            return "pending", now, None
        return "pending", release, HELD_FOR_QUIET_HOURS
