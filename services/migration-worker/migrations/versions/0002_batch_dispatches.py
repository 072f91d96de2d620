"""batch ranges dispatched as load_batch commands

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op
from migration_worker.adapters.tables import batch_dispatches

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    batch_dispatches.create(op.get_bind())


def downgrade() -> None:
    op.drop_table("migration_batch_dispatches")
