"""Settings of the migration worker (environment prefix MIGRATIONS_)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIGRATIONS_", env_file=".env", extra="ignore", populate_by_name=True)

    service_name: str = "migration-worker"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/migrations"
    http_port: int = 8003

    target_database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/oneclass", description="the OneClass database jobs load into"
    )
    source_root: str = Field(".", description="folder that relative CSV data-source locations resolve against")
    source_dsns: dict[str, str] = Field(
        default_factory=dict, description="reference -> DSN for PostgreSQL data sources named in start_job"
    )
    concurrency: int = Field(2, ge=1, le=64, description="connections loading batches in parallel per worker")
    batch_size: int | None = Field(None, ge=1, description="override of the plan's batch size")
    worker_name: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        description="replica id recorded with every batch checkpoint (host name and process id by default)",
    )
    backup_retention_hours: float = 48.0
    archive_retention_days: int = 90
    log_dir: str = "var/log/migrations"
    progress_interval_seconds: float = 2.0
    scheduler_poll_seconds: float = 30.0
    batch_messages: bool = Field(
        True, description="the worker loads batches from load_batch messages all replicas consume; false: in-process"
    )
    vectorised_prepare: bool = Field(
        True,
        description="CSV entities transformed and validated by Polars where it matches the SQL exactly; "
        "false: PostgreSQL only",
    )
    batch_lock_wait_seconds: float = Field(
        30.0, gt=0, description="how long a replica waits for a batch another (possibly dead) replica holds"
    )
    batch_stall_seconds: float = Field(
        120.0, gt=0, description="no batch committed for this long: the coordinator loads the rest itself"
    )

    @property
    def target_dsn(self) -> str:
        return self.target_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
