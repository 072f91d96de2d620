"""Settings every service shares; each service subclasses with its own env prefix and defaults.

Settings used by several services (broker, token secret, telemetry) have one global name so that
one `.env` configures the whole system; the rest take the service's prefix (`ORDERS_HTTP_PORT`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"


def shared(name: str) -> AliasChoices:
    """A setting read from one global environment name, whatever the service prefix."""
    return AliasChoices(name, name.lower())


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    service_name: str = "service"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    max_body_bytes: int = 1_048_576
    http_workers: int = Field(1, ge=1, description="uvicorn worker processes (replicas) on the one port")
    http_access_log: bool = Field(False, validation_alias=shared("HTTP_ACCESS_LOG"))

    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", validation_alias=shared("AMQP_URL"))
    broker_namespace: str = Field(
        "", validation_alias=shared("BROKER_NAMESPACE"), description="prefix of every exchange and queue"
    )
    consumer_prefetch: int = Field(32, validation_alias=shared("CONSUMER_PREFETCH"))
    consumer_batch_max: int = Field(
        32, ge=1, validation_alias=shared("CONSUMER_BATCH_MAX"), description="deliveries per inbox transaction"
    )
    retry_delays_ms: list[int] = Field(
        [1_000, 10_000, 60_000], validation_alias=shared("RETRY_DELAYS_MS"), description="growing delays"
    )
    delivery_limit: int = Field(10, validation_alias=shared("DELIVERY_LIMIT"))

    outbox_batch_size: int = Field(200, validation_alias=shared("OUTBOX_BATCH_SIZE"))
    outbox_poll_seconds: float = Field(2.0, validation_alias=shared("OUTBOX_POLL_SECONDS"))
    outbox_linger_ms: float = Field(
        10.0,
        ge=0,
        validation_alias=shared("OUTBOX_LINGER_MS"),
        description="the relay claims at most once per this interval, so a busy outbox is published in batches",
    )
    outbox_enabled: bool = Field(True, validation_alias=shared("OUTBOX_ENABLED"))

    auth_jwt_secret: SecretStr = Field(SecretStr(DEV_JWT_SECRET), validation_alias=shared("AUTH_JWT_SECRET"))
    auth_jwt_algorithms: list[str] = Field(["HS256"], validation_alias=shared("AUTH_JWT_ALGORITHMS"))
    auth_jwt_public_key: str | None = Field(None, validation_alias=shared("AUTH_JWT_PUBLIC_KEY"))
    auth_jwks_url: str | None = Field(None, validation_alias=shared("AUTH_JWKS_URL"))
    auth_jwt_issuer: str | None = Field(None, validation_alias=shared("AUTH_JWT_ISSUER"))
    auth_jwt_audience: str | None = Field(None, validation_alias=shared("AUTH_JWT_AUDIENCE"))

    otel_exporter: Literal["none", "console", "otlp", "jsonl"] = Field("none", validation_alias=shared("OTEL_EXPORTER"))
    otel_exporter_otlp_endpoint: str = Field(
        "http://127.0.0.1:4318", validation_alias=shared("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otel_jsonl_path: str = Field("var/traces.jsonl", validation_alias=shared("OTEL_JSONL_PATH"))
    log_level: str = Field("INFO", validation_alias=shared("LOG_LEVEL"))
    log_json: bool = Field(True, validation_alias=shared("LOG_JSON"))

    @property
    def database_dsn(self) -> str:
        """The URL without the SQLAlchemy driver part, for asyncpg, psql and LISTEN."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
