"""Webhook inbox: a unique dedupe key, so a repeated verified delivery is refused by the INSERT itself.

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
    # Nullable: rows stored before this revision, refused deliveries and unsigned hints carry none
    # (NULLs never collide), so the index builds on an inbox that already holds duplicates.
    op.add_column("webhook_inbox", sa.Column("dedupe_key", sa.String(), nullable=True))
    op.create_index("ux_webhook_inbox_dedupe", "webhook_inbox", ["dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_webhook_inbox_dedupe", table_name="webhook_inbox")
    op.drop_column("webhook_inbox", "dedupe_key")
