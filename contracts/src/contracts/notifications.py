"""Events the notifications service publishes."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from contracts.envelope import Payload

Channel = Literal["sms", "whatsapp", "email"]


class NotificationSent(Payload):
    producer = "notifications"
    event = "notification_sent"

    message_id: UUID
    order_id: UUID | None = None
    channel: Channel
    provider: str
    template: str
    recipient_hash: str


class NotificationFailed(Payload):
    producer = "notifications"
    event = "notification_failed"

    message_id: UUID
    order_id: UUID | None = None
    channel: Channel
    template: str
    reason: str


class NotificationDelivered(Payload):
    producer = "notifications"
    event = "notification_delivered"

    message_id: UUID
    order_id: UUID | None = None
    channel: Channel
    provider: str
    status: Literal["delivered", "read"]
