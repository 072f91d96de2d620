"""The worker's own database: migration jobs with their dry-run result, progress and report.

Per-batch checkpoints and the reject log are kept in the target database, where they commit with the
rows they describe (see adapters/target_db.py); reports carry their summary here.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, Table, Text, func
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

# The batch ranges a coordinating replica dispatched as load_batch commands; written in the same transaction
# as those commands' outbox rows, so a coordinator that crashes and resumes neither loses nor re-sends them.
batch_dispatches = Table(
    "migration_batch_dispatches",
    metadata,
    Column("job_id", UUID(as_uuid=True), primary_key=True),
    Column("entity", Text, primary_key=True),
    Column("batch_no", Integer, primary_key=True),
    Column("lo", BigInteger, nullable=False),
    Column("hi", BigInteger, nullable=False),
    Column("dispatched_by", Text, nullable=False),
    Column("dispatched_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
