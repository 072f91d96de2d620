"""Sandbox settings, read from ``SANDBOX_*`` environment variables."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PAYMENTS_WEBHOOKS = "http://127.0.0.1:8001/api/v1/payments/webhooks"
DELIVERY_REPORTS = "http://127.0.0.1:8002/api/v1/notifications/delivery-reports"


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8010
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    # Public address written into URLs the sandbox hands out (PayNow poll URLs, ...);
    # empty means "the address the request came in on".
    public_base_url: str = ""

    stripe_api_key: str = "sk_test_sandbox"
    stripe_webhook_secret: str = "whsec_sandbox_dev_secret"
    paynow_integration_id: str = "1201"
    paynow_integration_key: str = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977"
    ecocash_username: str = "oneclass"
    ecocash_password: str = "sandbox"
    whatsapp_access_token: str = "EAAG-sandbox-token"
    whatsapp_app_secret: str = "whatsapp-sandbox-app-secret"
    whatsapp_business_account_id: str = "102290129340398"
    telone_api_key: str = "telone-sandbox-key"
    econet_api_key: str = "econet-sandbox-key"
    generic_sms_api_key: str = "generic-sandbox-key"

    stripe_webhook_url: str = f"{PAYMENTS_WEBHOOKS}/stripe"
    paynow_result_url: str = f"{PAYMENTS_WEBHOOKS}/paynow"
    ecocash_notify_url: str = f"{PAYMENTS_WEBHOOKS}/ecocash"
    telone_report_url: str = f"{DELIVERY_REPORTS}/telone"
    econet_report_url: str = f"{DELIVERY_REPORTS}/econet"
    generic_sms_report_url: str = f"{DELIVERY_REPORTS}/generic"
    whatsapp_status_url: str = f"{DELIVERY_REPORTS}/whatsapp"

    # Delivery reports and WhatsApp statuses are sent in the background so that accepting a
    # message costs nothing extra (the 10,000-message bench relies on it).
    sms_delivery_reports: bool = True
    sms_report_delay_ms: int = Field(default=0, ge=0)
    whatsapp_statuses: bool = True
    whatsapp_status_delay_ms: int = Field(default=0, ge=0)
    callback_timeout_s: float = Field(default=5.0, gt=0)

    def callback_defaults(self) -> dict[str, str]:
        return {
            "stripe": self.stripe_webhook_url,
            "paynow": self.paynow_result_url,
            "ecocash": self.ecocash_notify_url,
            "telone": self.telone_report_url,
            "econet": self.econet_report_url,
            "generic_sms": self.generic_sms_report_url,
            "whatsapp": self.whatsapp_status_url,
        }
