"""All providers, built from settings, behind the one interface; `onemoney` goes through PayNow."""

import httpx

from payments.adapters.providers.base import PaymentProvider, ProviderName
from payments.adapters.providers.ecocash_provider import EcocashProvider
from payments.adapters.providers.paynow_provider import PaynowProvider
from payments.adapters.providers.stripe_provider import StripeProvider
from payments.settings import Settings

WEBHOOKS_PATH = "/api/v1/payments/webhooks"


class Providers:
    def __init__(self, settings: Settings) -> None:
        self.http = httpx.AsyncClient(timeout=settings.provider_timeout_s)
        webhooks = settings.public_base_url.rstrip("/") + WEBHOOKS_PATH
        self.stripe = StripeProvider(
            settings.stripe_api_base,
            settings.stripe_api_key.get_secret_value(),
            settings.stripe_webhook_secret.get_secret_value(),
            settings.stripe_tolerance_s,
            settings.provider_retries,
        )
        self.paynow = PaynowProvider(
            self.http,
            settings.paynow_api_base,
            settings.paynow_integration_id,
            settings.paynow_integration_key.get_secret_value(),
            result_url=f"{webhooks}/paynow",
            return_url=settings.return_url,
            auth_email=settings.paynow_auth_email,
            retries=settings.provider_retries,
        )
        self.ecocash = EcocashProvider(
            self.http,
            settings.ecocash_api_base,
            settings.ecocash_username,
            settings.ecocash_password.get_secret_value(),
            settings.ecocash_merchant_code,
            notify_url=f"{webhooks}/ecocash",
            retries=settings.provider_retries,
        )

    def get(self, name: str) -> PaymentProvider:
        """The adapter that talks to `name`'s API (a OneMoney payment is a PayNow transaction)."""
        providers: dict[str, PaymentProvider] = {
            "stripe": self.stripe,
            "paynow": self.paynow,
            "onemoney": self.paynow,
            "ecocash": self.ecocash,
        }
        return providers[name]

    def webhook_sources(self) -> dict[ProviderName, PaymentProvider]:
        return {"stripe": self.stripe, "paynow": self.paynow, "onemoney": self.paynow, "ecocash": self.ecocash}

    async def close(self) -> None:
        await self.http.aclose()
