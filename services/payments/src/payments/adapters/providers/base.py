"""The one interface every payment provider sits behind, and what crosses it."""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal, Protocol
from uuid import UUID

from payments.domain.states import PaymentStatus

ProviderName = Literal["stripe", "paynow", "ecocash", "onemoney"]


class ProviderError(Exception):
    """The provider refused or could not be reached; nothing was booked on our side."""

    def __init__(self, message: str, *, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class WebhookRejected(Exception):
    """A webhook that must never be applied: forged, tampered with, stale or unreadable."""


@dataclass(frozen=True)
class CheckoutRequest:
    payment_id: UUID
    order_id: UUID
    installment_id: UUID
    amount_minor: int
    currency: str
    method: str
    description: str
    idempotency_key: str
    phone: str | None = None
    payment_method: str | None = None


@dataclass(frozen=True)
class CheckoutStarted:
    provider_reference: str
    status: PaymentStatus
    redirect_url: str | None = None
    client_secret: str | None = None
    instructions: str | None = None
    poll_url: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class PaymentRef:
    """What a provider needs to find one of our payments again."""

    payment_id: UUID
    provider_reference: str | None
    amount_minor: int
    currency: str
    phone: str | None = None
    poll_url: str | None = None


@dataclass(frozen=True)
class ProviderStatus:
    """What the provider says about a payment right now (a lookup: the provider's own books)."""

    status: PaymentStatus | None  # None: a state we do not know, so the payment stays as it is
    raw_status: str
    amount_minor: int | None = None
    currency: str | None = None
    refunded_minor: int | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class RefundStarted:
    provider_reference: str
    succeeded: bool


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook, translated into our terms."""

    provider: ProviderName
    event_key: str
    kind: Literal["payment", "refund", "ignored"]
    raw_status: str
    status: PaymentStatus | None = None
    payment_id: UUID | None = None
    provider_reference: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    refunded_minor: int | None = None
    refund_id: UUID | None = None
    order_id: UUID | None = None
    failure_reason: str | None = None
    needs_confirmation: bool = False
    poll_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: ProviderName

    async def start_checkout(self, request: CheckoutRequest) -> CheckoutStarted: ...

    async def lookup(self, payment: PaymentRef) -> ProviderStatus: ...

    async def refund(
        self, payment: PaymentRef, refund_id: UUID, amount_minor: int, idempotency_key: str
    ) -> RefundStarted: ...

    def verify_webhook(self, body: bytes, headers: dict[str, str], received_at: float) -> ProviderEvent: ...

    def event_key_hint(self, body: bytes) -> str | None:
        """The event's id as the body claims it, before anything is verified (for inspection only)."""
        ...


def to_decimal(amount_minor: int) -> str:
    """Both currencies we sell in have two decimals."""
    return f"{Decimal(amount_minor) / 100:.2f}"


def to_minor(amount: str | float | Decimal) -> int:
    """Minor units of a provider's amount; ValueError for one that is not an amount of money."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"amount {amount!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"amount {amount!r} is not a number")
    minor = value * 100
    if minor != minor.to_integral_value():
        raise ValueError(f"amount {amount} has more than two decimals")
    return int(minor)


def msisdn(phone: str) -> str:
    """07xxxxxxxx and +2637xxxxxxxx both become 2637xxxxxxxx."""
    digits = phone.lstrip("+")
    return "263" + digits[1:] if digits.startswith("0") else digits
