"""migration jobs table and the messaging tables

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op
from migration_worker.adapters.tables import jobs
from servicekit.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    jobs.create(op.get_bind())
    op.create_index("migration_jobs_plan_status", "migration_jobs", ["plan_name", "status"])
    op.create_index(
        "migration_jobs_scheduled", "migration_jobs", ["scheduled_for"], postgresql_where="status = 'scheduled'"
    )
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    op.drop_table("migration_jobs")
