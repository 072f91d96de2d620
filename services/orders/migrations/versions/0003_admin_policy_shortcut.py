"""Child-table policies: admins and the system skip the per-row EXISTS on orders.

Without the shortcut every milestone/task row an admin view reads runs a subquery on orders; at
10,000 orders the team-performance view spent seconds there.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHILD_TABLES = ("milestones", "tasks", "data_sources", "installment_payments", "migration_jobs", "communication_log")


def _replace(table: str, visible: str) -> None:
    op.execute(f"DROP POLICY tenant_access ON {table}")
    op.execute(f"CREATE POLICY tenant_access ON {table} USING ({visible}) WITH CHECK ({visible})")


def upgrade() -> None:
    for table in CHILD_TABLES:
        _replace(
            table,
            f"app_role() IN ('platform_admin', 'system')"
            f" OR EXISTS (SELECT 1 FROM orders o WHERE o.id = {table}.order_id)",
        )


def downgrade() -> None:
    for table in CHILD_TABLES:
        _replace(table, f"app_role() = 'system' OR EXISTS (SELECT 1 FROM orders o WHERE o.id = {table}.order_id)")
