"""The migration worker's command and events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import Payload


class DataSource(BaseModel):
    """Where the school's legacy data lives. Secrets travel as references, never in clear."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    source_id: UUID
    kind: Literal["csv", "postgres"]
    name: str
    location: str  # CSV: storage URI of the uploaded file; postgres: reference to the encrypted DSN
    entity: str | None = None
    estimated_rows: int | None = None


class StartJob(Payload):
    producer = "migrations"
    event = "start_job"
    is_command = True

    job_id: UUID
    order_id: UUID
    school_id: UUID
    plan: str = "school-sis"
    data_sources: list[DataSource] = []
    dry_run_only: bool = False
    scheduled_for: datetime | None = None
    offline_mode: bool = False


class LoadBatch(Payload):
    """One key range of one entity of a running job. Published by the replica coordinating the job,
    consumed by every worker replica from one quorum queue (competing consumers); loading it twice is
    harmless because the batch's checkpoint commits with its rows."""

    producer = "migrations"
    event = "load_batch"
    is_command = True

    job_id: UUID
    entity: str
    batch_no: int = Field(ge=0)
    lo: int = Field(ge=0, description="row numbers lo < _row_no <= hi of the prepared entity")
    hi: int = Field(ge=0)


class EntityProgress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    entity: str
    rows_done: int
    rows_total: int


class DryRunCompleted(Payload):
    producer = "migrations"
    event = "dry_run_completed"

    job_id: UUID
    order_id: UUID | None = None
    verdict: Literal["go", "no_go"]
    rows_total: int
    warnings: int
    errors: int
    estimated_seconds: float | None = None


class JobScheduled(Payload):
    producer = "migrations"
    event = "job_scheduled"

    job_id: UUID
    order_id: UUID | None = None
    scheduled_for: datetime
    offline_mode: bool = False


class JobProgress(Payload):
    producer = "migrations"
    event = "job_progress"

    job_id: UUID
    order_id: UUID | None = None
    phase: Literal["dry_run", "backup", "load", "verify", "report", "rollback"]
    entity: str | None = None
    rows_done: int = Field(ge=0)
    rows_total: int = Field(ge=0)
    rows_per_second: float | None = None
    eta_seconds: float | None = None
    percent: int = Field(ge=0, le=100)
    worker: str | None = None
    cpu_percent: float | None = None
    memory_mb: float | None = None


class EntitySummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    entity: str
    source: int
    migrated: int
    rejected: int
    merged: int = 0
    success_rate: float


class JobCompleted(Payload):
    producer = "migrations"
    event = "job_completed"

    job_id: UUID
    order_id: UUID | None = None
    rows_total: int
    rows_migrated: int
    rows_rejected: int
    entities: list[EntitySummary] = []
    report_url: str | None = None


class JobFailed(Payload):
    producer = "migrations"
    event = "job_failed"

    job_id: UUID
    order_id: UUID | None = None
    reason: str
    phase: str | None = None
