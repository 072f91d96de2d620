from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from servicekit.settings import ServiceSettings

# Development-only Fernet key; production sets ORDERS_DATA_SOURCE_KEYS (newest first, older ones still decrypt).
DEV_DATA_SOURCE_KEY = "b3JkZXJzLWRldi1vbmx5LWtleS1jaGFuZ2UtbWUtMDA="


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", env_file=".env", extra="ignore", populate_by_name=True)

    service_name: str = "orders"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/orders"
    # Every pooled connection switches to this non-superuser role (created by the migrations), whatever user
    # it logged in as: superusers bypass row-level security, this role cannot.
    db_role: str = Field("orders_app", pattern=r"^[a-z_][a-z0-9_]*$")
    http_port: int = 8000

    data_source_keys: list[SecretStr] = Field(default_factory=lambda: [SecretStr(DEV_DATA_SOURCE_KEY)])
    upload_dir: str = "var/orders/uploads"

    # Sliding window per client and endpoint, kept in Redis so that every replica counts against one limit.
    # Unreachable Redis: requests go through unlimited (fail open), with a warning and a metric.
    rate_limit_enabled: bool = True
    rate_limit_requests: int = 120
    rate_limit_window_seconds: float = 60.0
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Short: the limiter sits in front of every request, and a slow Redis must not become a slow API.
    redis_timeout_seconds: float = 0.25
