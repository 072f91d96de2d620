"""The payment state machine: a payment only ever moves forward.

pending → processing → succeeded → partially_refunded → refunded; failed and cancelled end an attempt.
A provider may still report money captured after a failure (Stripe lets the payer retry the same
PaymentIntent), so `failed → succeeded` is forward; nothing ever leaves succeeded backwards, and a
cancelled attempt takes no more money events (those are quarantined for a person to look at).
"""

from typing import Literal

PaymentStatus = Literal["pending", "processing", "succeeded", "partially_refunded", "refunded", "failed", "cancelled"]

OPEN: frozenset[PaymentStatus] = frozenset({"pending", "processing"})
PAID: frozenset[PaymentStatus] = frozenset({"succeeded", "partially_refunded", "refunded"})

_ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    "pending": frozenset({"processing", "succeeded", "failed", "cancelled"}),
    "processing": frozenset({"succeeded", "failed", "cancelled"}),
    "failed": frozenset({"succeeded"}),
    "cancelled": frozenset(),
    "succeeded": frozenset({"partially_refunded", "refunded"}),
    "partially_refunded": frozenset({"refunded"}),
    "refunded": frozenset(),
}


def can_move(current: PaymentStatus, target: PaymentStatus) -> bool:
    return target in _ALLOWED[current]


def refund_status(paid_minor: int, refunded_minor: int) -> PaymentStatus:
    if refunded_minor <= 0:
        return "succeeded"
    return "refunded" if refunded_minor >= paid_minor else "partially_refunded"
