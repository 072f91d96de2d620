"""Sending one message through its channel's providers, in order, with circuit breakers and shared rate limits.

A provider is skipped when its circuit is open or its hourly quota is used up; an error or timeout
counts against its circuit and the message fails over to the next provider.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from servicekit.metrics import PROVIDER_FAILOVERS

from notifications.adapters.providers.base import Accepted, ProviderError
from notifications.adapters.providers.email import SmtpMailer
from notifications.adapters.providers.sms import SmsGateway
from notifications.adapters.providers.whatsapp import WhatsAppCloud
from notifications.adapters.resilience import CircuitBreaker, RateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    provider: str
    outcome: str  # accepted | error | rate_limited | circuit_open
    provider_message_id: str | None = None
    error: str | None = None


@dataclass
class SendOutcome:
    attempts: list[Attempt] = field(default_factory=list)
    accepted: Accepted | None = None

    @property
    def only_rate_limited(self) -> bool:
        """Nothing failed: every provider was just out of quota, so wait for the next window."""
        return self.accepted is None and bool(self.attempts) and all(a.outcome == "rate_limited" for a in self.attempts)


@dataclass(frozen=True)
class OutgoingMessage:
    reference: str
    channel: str
    address: str
    body: str
    subject: str | None = None
    html: str | None = None
    wa_template: str | None = None
    wa_params: Sequence[str] = ()


Call = Callable[[], Awaitable[Accepted]]


class Sender:
    def __init__(
        self,
        *,
        sms: Sequence[SmsGateway],
        whatsapp: WhatsAppCloud,
        mailer: SmtpMailer,
        limiter: RateLimiter,
        limits: dict[str, int],
        breaker: Callable[[], CircuitBreaker],
        callback_url: Callable[[str], str | None],
    ) -> None:
        self.sms, self.whatsapp, self.mailer = list(sms), whatsapp, mailer
        self.limiter, self.limits = limiter, limits
        self.breakers: dict[str, CircuitBreaker] = {}
        self._new_breaker = breaker
        self._callback_url = callback_url

    def breaker(self, provider: str) -> CircuitBreaker:
        if provider not in self.breakers:
            self.breakers[provider] = self._new_breaker()
        return self.breakers[provider]

    async def send(self, message: OutgoingMessage) -> SendOutcome:
        return await self._through(self._candidates(message))

    def _candidates(self, m: OutgoingMessage) -> list[tuple[str, Call]]:
        if m.channel == "sms":
            return [(g.name, self._sms_call(g, m)) for g in self.sms]
        if m.channel == "whatsapp":
            name, _, language = (m.wa_template or "").partition(":")

            async def whatsapp() -> Accepted:
                return await self.whatsapp.send_template(
                    m.address, name, language or "en", list(m.wa_params), reference=m.reference
                )

            return [(self.whatsapp.name, whatsapp)]
        if m.channel == "email":

            async def email() -> Accepted:
                return await self.mailer.send(m.address, m.subject or "", m.body, m.html, reference=m.reference)

            return [(self.mailer.name, email)]
        raise ValueError(f"unknown channel {m.channel!r}")

    def _sms_call(self, gateway: SmsGateway, m: OutgoingMessage) -> Call:
        async def call() -> Accepted:
            return await gateway.send(
                m.address, m.body, reference=m.reference, callback_url=self._callback_url(gateway.name)
            )

        return call

    async def _through(self, candidates: list[tuple[str, Call]]) -> SendOutcome:
        outcome = SendOutcome()
        for provider, call in candidates:
            breaker = self.breaker(provider)
            if not breaker.allows():
                outcome.attempts.append(Attempt(provider, "circuit_open"))
                continue
            limit = self.limits.get(provider)
            if limit is not None and not await self.limiter.acquire(provider, limit):
                outcome.attempts.append(Attempt(provider, "rate_limited"))
                continue
            try:
                accepted = await call()
            except ProviderError as exc:
                breaker.failure()
                log.warning("provider %s failed, trying the next one: %s", provider, exc.detail)
                outcome.attempts.append(Attempt(provider, "error", error=exc.detail[:500]))
                PROVIDER_FAILOVERS.labels(provider).inc()
                continue
            breaker.success()
            outcome.attempts.append(Attempt(provider, "accepted", provider_message_id=accepted.provider_message_id))
            outcome.accepted = accepted
            return outcome
        return outcome
