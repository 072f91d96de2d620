from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict
from servicekit.settings import ServiceSettings

SANDBOX = "http://127.0.0.1:8010"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_file=".env", extra="ignore", populate_by_name=True)

    service_name: str = "payments"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/payments"
    http_port: int = 8001
    # Where payers land after a hosted checkout, and where providers post (written into outgoing requests).
    public_base_url: str = "http://127.0.0.1:8001"
    return_url: str = "http://127.0.0.1:3000/payments/return"

    stripe_api_base: str = SANDBOX
    stripe_api_key: SecretStr = SecretStr("sk_test_sandbox")
    stripe_webhook_secret: SecretStr = SecretStr("whsec_sandbox_dev_secret")
    stripe_tolerance_s: int = 300

    paynow_api_base: str = f"{SANDBOX}/paynow"
    paynow_integration_id: str = "1201"
    paynow_integration_key: SecretStr = SecretStr("3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977")
    paynow_auth_email: str = "payments@oneclass.example"

    ecocash_api_base: str = f"{SANDBOX}/ecocash/v1"
    ecocash_username: str = "oneclass"
    ecocash_password: SecretStr = SecretStr("sandbox")
    ecocash_merchant_code: str = "042120"

    provider_timeout_s: float = 10.0
    provider_retries: int = 3

    webhook_intake_pool_size: int = 10  # connections of the intake's own asyncpg pool
    # Background work: webhook application, due/overdue checks and reconciliation.
    webhook_worker_enabled: bool = True
    webhook_worker_batch: int = 100
    webhook_worker_concurrency: int = 4  # applier tasks per process (all but one pause while intake is busy)
    webhook_worker_poll_s: float = 0.5
    webhook_max_attempts: int = 5
    # Wait before the next attempt of a delivery that failed to apply (provider lookup down, payment not yet visible).
    webhook_retry_delays_s: list[float] = [1, 5, 30, 120]
    scheduler_enabled: bool = True
    scheduler_interval_s: float = 60.0
    overdue_grace_days: int = 0
    reconcile_after_minutes: int = 15
