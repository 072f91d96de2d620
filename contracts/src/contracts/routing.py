"""Every message type on the bus, and the names of the shared topology.

Routing keys are `<producer>.<event>.v<N>`; commands `<target>.cmd.<command>.v<N>`.
"""

from __future__ import annotations

from contracts.envelope import Payload
from contracts.migrations import (
    DryRunCompleted,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobScheduled,
    LoadBatch,
    StartJob,
)
from contracts.notifications import NotificationDelivered, NotificationFailed, NotificationSent
from contracts.orders import (
    MilestoneCompleted,
    OrderCancelled,
    OrderCreated,
    OrderStatusChanged,
    TeamAssigned,
)
from contracts.payments import (
    InstallmentDue,
    InstallmentOverdue,
    PaymentFailed,
    PaymentPlanCreated,
    PaymentRefunded,
    PaymentSucceeded,
)

EVENTS_EXCHANGE = "oneclass.events"
DEAD_LETTER_EXCHANGE = "oneclass.dead-letter"

ALL_MESSAGES: tuple[type[Payload], ...] = (
    OrderCreated,
    OrderStatusChanged,
    OrderCancelled,
    MilestoneCompleted,
    TeamAssigned,
    PaymentPlanCreated,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRefunded,
    InstallmentDue,
    InstallmentOverdue,
    NotificationSent,
    NotificationFailed,
    NotificationDelivered,
    StartJob,
    DryRunCompleted,
    JobScheduled,
    JobProgress,
    JobCompleted,
    JobFailed,
    LoadBatch,
)

BY_ROUTING_KEY: dict[str, type[Payload]] = {m.routing_key(): m for m in ALL_MESSAGES}


def payload_type(routing_key: str) -> type[Payload]:
    try:
        return BY_ROUTING_KEY[routing_key]
    except KeyError:
        raise KeyError(f"unknown message type {routing_key!r}") from None


# Who publishes what (commands are sent by the service that asks for them).
PUBLISHED_BY: dict[str, tuple[type[Payload], ...]] = {
    "orders": (OrderCreated, OrderStatusChanged, OrderCancelled, MilestoneCompleted, TeamAssigned, StartJob),
    "payments": (
        PaymentPlanCreated,
        PaymentSucceeded,
        PaymentFailed,
        PaymentRefunded,
        InstallmentDue,
        InstallmentOverdue,
    ),
    "notifications": (NotificationSent, NotificationFailed, NotificationDelivered),
    "migration-worker": (DryRunCompleted, JobScheduled, JobProgress, JobCompleted, JobFailed, LoadBatch),
}


def published_by(service: str) -> tuple[type[Payload], ...]:
    return PUBLISHED_BY.get(service, ())
