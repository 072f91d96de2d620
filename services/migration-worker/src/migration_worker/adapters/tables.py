"""The worker's own database: migration jobs with their dry-run result, progress and report.

Per-batch checkpoints and the reject log are kept in the target database, where they commit with the
rows they describe (see adapters/target_db.py); reports carry their summary here.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

jobs = Table(
    "migration_jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("plan_name", Text, nullable=False),
    Column("plan_text", Text, nullable=False),
    Column("source_kind", Text, nullable=False),
    Column("source_location", Text, nullable=False),
    Column("target_dsn", Text, nullable=False),
    Column("order_id", UUID(as_uuid=True)),
    Column("school_id", UUID(as_uuid=True)),
    Column("status", Text, nullable=False, server_default="created"),
    Column("phase", Text),
    Column("scheduled_for", DateTime(timezone=True)),
    Column("offline_mode", Boolean, nullable=False, server_default="false"),
    Column("dry_run_only", Boolean, nullable=False, server_default="false"),
    Column("forced_reason", Text),
    Column("dry_run", JSONB),
    Column("progress", JSONB),
    Column("report", JSONB),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)
