from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from servicekit.settings import ServiceSettings

SANDBOX = "http://127.0.0.1:8010"
# Development-only keys: every real deployment sets NOTIFICATIONS_PII_KEYS / NOTIFICATIONS_PII_HASH_KEY.
DEV_PII_KEY = "Z0zPH4w2YRenuOSMyOnzyNicNuBaaPvMo4_DnPb48Y0="
DEV_PII_HASH_KEY = "dev-only-pii-hash-key-change-me-0123456789"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFICATIONS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    service_name: str = "notifications"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/notifications"
    http_port: int = 8002
    # A bulk send of 100,000 recipients is a few MB of JSON.
    max_body_bytes: int = 16 * 1024 * 1024
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Where providers post delivery reports; empty leaves each provider's own configured default.
    public_base_url: str = ""
    # SMS gateways do not sign their callbacks: when set, the callback URLs we hand them carry this
    # token and callbacks (delivery reports, inbound SMS) without it are refused.
    callback_token: SecretStr | None = None

    # SMS gateways, tried in this order: the first is primary, the rest fail-overs.
    sms_providers: list[Literal["telone", "econet", "generic_sms"]] = ["telone", "econet"]
    telone_base_url: str = f"{SANDBOX}/telone/v1"
    telone_api_key: SecretStr = SecretStr("telone-sandbox-key")
    telone_rate_per_hour: int = 1_000
    econet_base_url: str = f"{SANDBOX}/econet/v1"
    econet_api_key: SecretStr = SecretStr("econet-sandbox-key")
    econet_rate_per_hour: int = 500
    generic_sms_base_url: str = f"{SANDBOX}/generic/sms"
    generic_sms_api_key: SecretStr = SecretStr("generic-sandbox-key")
    generic_sms_rate_per_hour: int = 1_000
    sms_sender_id: str = "ONECLASS"
    provider_timeout_s: float = Field(5.0, gt=0)
    circuit_failure_threshold: int = Field(3, ge=1)
    circuit_reset_s: float = Field(30.0, gt=0)

    whatsapp_base_url: str = f"{SANDBOX}/whatsapp/v19.0"
    whatsapp_phone_number_id: str = "109876543210"
    whatsapp_access_token: SecretStr = SecretStr("EAAG-sandbox-token")
    whatsapp_app_secret: SecretStr = SecretStr("whatsapp-sandbox-app-secret")
    whatsapp_verify_token: SecretStr = SecretStr("oneclass-whatsapp-verify-dev")
    whatsapp_rate_per_hour: int = 10_000

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_use_tls: bool = False
    email_from: str = "OneClass <no-reply@oneclass.example>"

    pii_keys: list[SecretStr] = [SecretStr(DEV_PII_KEY)]
    pii_hash_key: SecretStr = SecretStr(DEV_PII_HASH_KEY)

    dispatcher_enabled: bool = True
    dispatcher_batch_size: int = Field(50, ge=1)
    dispatcher_concurrency: int = Field(16, ge=1)
    dispatcher_poll_seconds: float = Field(1.0, gt=0)
    dispatch_lease_seconds: float = Field(60.0, gt=0)
    dispatch_retry_delays_s: list[float] = [5, 30, 120, 600, 1800]

    default_timezone: str = "Africa/Harare"
    # Platform-wide quiet hours (local hours, e.g. 21 and 7); none by default, recipients may set their own.
    quiet_hours_start: int | None = Field(None, ge=0, le=23)
    quiet_hours_end: int | None = Field(None, ge=0, le=23)

    # Outbound webhooks: Standard Webhooks retry schedule (seconds after the previous attempt).
    webhook_retry_schedule_s: list[float] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    webhook_disable_after_s: float = 5 * 24 * 3600
    webhook_timeout_s: float = Field(10.0, gt=0)
    allow_private_targets: bool = False
    platform_ops_email: str = "ops@oneclass.example"

    bulk_max_recipients: int = 100_000
    bulk_chunk_size: int = Field(500, ge=1, le=5_000)
