"""Bulk jobs count their chunks, so progress knows when fan-out is done.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bulk_jobs", sa.Column("chunks", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("bulk_jobs", sa.Column("chunks_done", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("bulk_jobs", "chunks_done")
    op.drop_column("bulk_jobs", "chunks")
