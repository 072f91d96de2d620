"""The declarative routing table: which event → which template → which channels, urgent or not.

Recipients are the order's contact (carried by order events, remembered per order) plus the school's
contacts registered through the API. A route's `template` picks the template from the payload (or
None: this event needs no message, e.g. a status change another event already announces).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from contracts.envelope import Payload
from contracts.money import Money

from contracts import migrations, orders, payments

Channel = Literal["sms", "whatsapp", "email"]
CHANNELS: tuple[Channel, ...] = ("sms", "whatsapp", "email")

Variables = Callable[[Any], dict[str, Any]]


def money(value: Money) -> str:
    units, cents = divmod(value.amount_minor, 100)
    return f"{value.currency} {units:,}.{cents:02d}"


# The platform's schools are in Zimbabwe: times in messages are Central Africa Time.
SCHOOL_ZONE = ZoneInfo("Africa/Harare")


def _local(moment: datetime) -> str:
    return moment.astimezone(SCHOOL_ZONE).strftime("%d %b %Y %H:%M CAT")


def order_ref(order_id: object) -> str:
    return str(order_id)[:8].upper() if order_id else "-"


@dataclass(frozen=True)
class Reminder:
    """A message sent `before` the moment its event names."""

    before: timedelta
    lead: str  # how the message says it: "24 h"
    urgent: bool  # an imminent reminder is no use held for quiet hours until after the moment


@dataclass(frozen=True)
class Reminders:
    """Instead of one message now: one per reminder still ahead of the moment `at(payload)`."""

    at: Callable[[Any], datetime]
    each: tuple[Reminder, ...]


@dataclass(frozen=True)
class Route:
    message: type[Payload]
    template: Callable[[Any], str | None]
    channels: tuple[Channel, ...]
    variables: Variables
    urgent: bool = False
    reminders: Reminders | None = None

    @property
    def event_type(self) -> str:
        return self.message.event_type()


def _fixed(name: str) -> Callable[[Any], str]:
    return lambda _: name


_STATUS_TEMPLATES = {"approved": "order_approved", "go_live": "go_live"}
# Announced by their own event (order_cancelled) or too small to announce.
_SILENT_STATUSES = {"cancelled", "pending"}


def _status_template(p: orders.OrderStatusChanged) -> str | None:
    if p.to_status in _SILENT_STATUSES:
        return None
    return _STATUS_TEMPLATES.get(p.to_status, "order_status_changed")


PROGRESS_MARKS = (25, 50, 75)


def _base(p: Any) -> dict[str, Any]:
    return {"order_ref": order_ref(getattr(p, "order_id", None))}


ROUTES: tuple[Route, ...] = (
    Route(
        orders.OrderCreated,
        _fixed("order_created"),
        ("sms", "email"),
        lambda p: {**_base(p), "package": p.package_code.title(), "total": money(p.total)},
    ),
    Route(
        orders.OrderStatusChanged,
        _status_template,
        ("sms", "email"),
        lambda p: {**_base(p), "status": p.to_status.replace("_", " ")},
    ),
    Route(
        orders.OrderCancelled, _fixed("order_cancelled"), ("sms", "email"), lambda p: {**_base(p), "reason": p.reason}
    ),
    Route(
        orders.MilestoneCompleted,
        _fixed("milestone_completed"),
        ("sms", "whatsapp"),
        lambda p: {**_base(p), "milestone": p.name, "progress": p.progress_percent},
    ),
    Route(
        payments.PaymentPlanCreated,
        _fixed("payment_plan_created"),
        ("sms", "email"),
        lambda p: {
            **_base(p),
            "total": money(p.total),
            "installments": len(p.installments),
            "first_amount": money(p.installments[0].amount) if p.installments else money(p.total),
        },
    ),
    Route(
        payments.PaymentSucceeded,
        _fixed("payment_succeeded"),
        ("sms", "whatsapp", "email"),
        lambda p: {**_base(p), "amount": money(p.amount), "provider": p.provider.title()},
    ),
    Route(
        payments.PaymentFailed,
        _fixed("payment_failed"),
        ("sms", "whatsapp", "email"),
        lambda p: {**_base(p), "amount": money(p.amount), "reason": p.reason},
        urgent=True,
    ),
    Route(
        payments.PaymentRefunded,
        _fixed("payment_refunded"),
        ("sms", "email"),
        lambda p: {**_base(p), "amount": money(p.amount)},
    ),
    Route(
        payments.InstallmentDue,
        _fixed("installment_due"),
        ("sms", "whatsapp", "email"),
        lambda p: {**_base(p), "amount": money(p.amount), "due_date": p.due_date.isoformat(), "sequence": p.sequence},
    ),
    Route(
        payments.InstallmentOverdue,
        _fixed("installment_overdue"),
        ("sms", "whatsapp", "email"),
        lambda p: {
            **_base(p),
            "amount": money(p.amount),
            "due_date": p.due_date.isoformat(),
            "sequence": p.sequence,
            "days_overdue": p.days_overdue,
        },
    ),
    Route(
        migrations.JobScheduled,
        _fixed("migration_scheduled"),
        ("sms", "email"),
        lambda p: {**_base(p), "starts_at": _local(p.scheduled_for)},
        reminders=Reminders(
            at=lambda p: p.scheduled_for,
            each=(
                Reminder(timedelta(hours=24), "24 h", urgent=False),
                Reminder(timedelta(hours=2), "2 h", urgent=True),
                Reminder(timedelta(minutes=30), "30 min", urgent=True),
            ),
        ),
    ),
    Route(
        migrations.JobProgress,
        _fixed("migration_progress"),
        ("whatsapp", "email"),
        lambda p: {**_base(p), "percent": p.percent, "phase": p.phase.replace("_", " ")},
    ),
    Route(
        migrations.JobCompleted,
        _fixed("migration_completed"),
        ("sms", "whatsapp", "email"),
        lambda p: {**_base(p), "rows_migrated": p.rows_migrated, "rows_total": p.rows_total},
    ),
    Route(
        migrations.JobFailed,
        _fixed("migration_failed"),
        ("sms", "email"),
        lambda p: {**_base(p), "reason": p.reason},
    ),
)

ROUTES_BY_EVENT: dict[str, Route] = {r.event_type: r for r in ROUTES}

# WhatsApp Cloud API: approved template names per language, and the body parameters in order.
# Shona and Ndebele are not WhatsApp template languages, so their texts are registered under
# their own names with the English language code.
WHATSAPP_TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    name: {
        "en": (f"oneclass_{name}", "en"),
        "sn": (f"oneclass_{name}_sn", "en"),
        "nd": (f"oneclass_{name}_nd", "en"),
    }
    for name in (
        "milestone_completed",
        "payment_succeeded",
        "payment_failed",
        "installment_due",
        "installment_overdue",
        "migration_progress",
        "migration_completed",
        "go_live",
        "bulk_message",
    )
}
WHATSAPP_PARAMS: dict[str, tuple[str, ...]] = {
    "milestone_completed": ("name", "milestone", "order_ref", "progress"),
    "payment_succeeded": ("name", "amount", "order_ref", "provider"),
    "payment_failed": ("name", "amount", "order_ref", "reason"),
    "installment_due": ("name", "sequence", "amount", "order_ref", "due_date"),
    "installment_overdue": ("name", "sequence", "amount", "order_ref", "due_date", "days_overdue"),
    "migration_progress": ("name", "order_ref", "percent", "phase"),
    "migration_completed": ("name", "order_ref", "rows_migrated", "rows_total"),
    "go_live": ("name", "order_ref"),
    "bulk_message": ("text",),
}


def whatsapp_template(template: str, language: str) -> tuple[str, str] | None:
    names = WHATSAPP_TEMPLATES.get(template)
    if names is None:
        return None
    return names.get(language) or names["en"]
