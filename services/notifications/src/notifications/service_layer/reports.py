"""Delivery reports: each provider's callback shape mapped to one status, applied to its message.

Statuses only move forward (sent → delivered → read; failed is final), so late or repeated
callbacks cannot undo a newer state.
"""

import json
from dataclasses import dataclass
from typing import Any

from contracts.envelope import Envelope
from contracts.notifications import NotificationDelivered
from servicekit.outbox import add_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

RANK = {"pending": 0, "sending": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass(frozen=True)
class Report:
    provider: str
    provider_message_id: str
    status: str  # delivered | read | failed | sent
    error: str | None = None


class UnreadableReport(ValueError):
    pass


def _sms_status(value: object) -> str:
    status = str(value).upper()
    if status in {"DELIVERED", "DELIVRD"}:
        return "delivered"
    if status in {"FAILED", "UNDELIV", "REJECTED", "EXPIRED"}:
        return "failed"
    return "sent"


def _text(value: Any) -> str | None:
    """An error code as text: gateways send `5` as readily as `"5"`."""
    return None if value is None else str(value)[:500]


def parse(provider: str, body: dict[str, Any]) -> list[Report]:
    try:
        if provider == "telone":
            return [
                Report(provider, str(body["message_id"]), _sms_status(body["status"]), _text(body.get("error_code")))
            ]
        if provider == "econet":
            status = _sms_status(body["state"])
            return [
                Report(
                    provider,
                    str(body["messageId"]),
                    status,
                    None if status != "failed" else _text(body.get("errorCode")),
                )
            ]
        if provider in {"generic", "generic_sms"}:
            return [Report("generic_sms", str(body["id"]), _sms_status(body["status"]))]
        if provider == "whatsapp":
            reports = []
            for entry in body["entry"]:
                for change in entry["changes"]:
                    for status in change["value"].get("statuses", []):
                        errors = status.get("errors") or []
                        reports.append(
                            Report(
                                "whatsapp",
                                str(status["id"]),
                                str(status["status"]),
                                _text(errors[0].get("title")) if errors else None,
                            )
                        )
            return reports
    except (KeyError, TypeError, IndexError, AttributeError) as exc:  # AttributeError: a list where a map belongs
        raise UnreadableReport(f"{provider} report is missing {exc}") from None
    raise UnreadableReport(f"unknown provider {provider!r}")


async def record(session: AsyncSession, report: Report, raw: dict[str, Any]) -> bool:
    """Store the report and apply it; False when its message is not (yet) known."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:pmid))"), {"pmid": report.provider_message_id})
    applied = await _apply(session, report)
    await session.execute(
        text(
            "INSERT INTO delivery_reports (provider, provider_message_id, status, error, raw, applied, received_at) "
            "VALUES (:p, :pm, :s, :e, CAST(:raw AS jsonb), :a, now())"
        ),
        {
            "p": report.provider,
            "pm": report.provider_message_id,
            "s": report.status,
            "e": report.error,
            "raw": json.dumps(raw),
            "a": applied,
        },
    )
    return applied


async def apply_waiting_reports(session: AsyncSession, provider: str, provider_message_id: str) -> None:
    """Called when a send is recorded: apply reports that arrived before it (same advisory lock held)."""
    rows = (
        await session.execute(
            text(
                "UPDATE delivery_reports SET applied = true WHERE provider_message_id = :pm AND provider = :p "
                "AND NOT applied RETURNING provider, status, error"
            ),
            {"pm": provider_message_id, "p": provider},
        )
    ).all()
    for row in sorted(rows, key=lambda r: RANK.get(r.status, 0)):
        await _apply(session, Report(row.provider, provider_message_id, row.status, row.error))


async def _apply(session: AsyncSession, report: Report) -> bool:
    found = (
        await session.execute(
            text(
                # ids are the provider's own: two gateways may well issue the same one
                "SELECT id, status, order_id, channel, provider, school_id FROM messages "
                "WHERE provider_message_id = :pm AND provider = :p FOR UPDATE"
            ),
            {"pm": report.provider_message_id, "p": report.provider},
        )
    ).first()
    if found is None:
        return False
    if RANK.get(report.status, 0) > RANK.get(found.status, 0) and found.status != "failed":
        await session.execute(
            text("UPDATE messages SET status = :s, last_error = :e, updated_at = now() WHERE id = :id"),
            {"s": report.status, "e": report.error, "id": found.id},
        )
        if report.status in {"delivered", "read"}:
            await add_event(
                session,
                Envelope.wrap(
                    NotificationDelivered(
                        message_id=found.id,
                        order_id=found.order_id,
                        channel=found.channel,
                        provider=found.provider or report.provider,
                        status=report.status,
                    ),
                    school_id=found.school_id,
                ),
            )
    return True
