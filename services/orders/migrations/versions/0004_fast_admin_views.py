"""Admin views at 10,000 orders: row-level security evaluated once per query, and milestone counts per order.

1. Every policy reads the request's role, school and user through a scalar subquery, `(SELECT app_role())`.
   PostgreSQL then evaluates it once per statement (an InitPlan) instead of calling `current_setting` for
   every row it filters; the rules themselves are unchanged.
2. `order_milestone_stats` holds per order the number of milestones, completed ones and those completed on
   time, kept by statement-level triggers on `milestones` in the same transaction as the change, so
   `/team-performance` joins one row per order instead of aggregating ten milestones per order. The triggers
   apply deltas (`done = done + d`), which stay right when two transactions change one order's milestones
   at once (a recount from each one's snapshot would not).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APP_ROLE = "orders_app"
CHILD_TABLES = ("milestones", "tasks", "data_sources", "installment_payments", "migration_jobs", "communication_log")

ROLE, SCHOOL, USER = "(SELECT app_role())", "(SELECT app_school())", "(SELECT app_user())"
ORDER_VISIBLE = (
    f"{ROLE} IN ('platform_admin', 'system')"
    f" OR ({ROLE} = 'school_admin' AND school_id = {SCHOOL})"
    f" OR ({ROLE} = 'team_member' AND {USER} = ANY (team))"
)
SCHOOL_VISIBLE = f"{ROLE} IN ('platform_admin', 'system') OR ({ROLE} = 'school_admin' AND school_id = {SCHOOL})"


def _child_visible(table: str) -> str:
    return f"{ROLE} IN ('platform_admin', 'system') OR EXISTS (SELECT 1 FROM orders o WHERE o.id = {table}.order_id)"


# As 0002/0003 left them, for the downgrade.
OLD_ORDER_VISIBLE = (
    "app_role() IN ('platform_admin', 'system')"
    " OR (app_role() = 'school_admin' AND school_id = app_school())"
    " OR (app_role() = 'team_member' AND app_user() = ANY (team))"
)
OLD_SCHOOL_VISIBLE = (
    "app_role() IN ('platform_admin', 'system') OR (app_role() = 'school_admin' AND school_id = app_school())"
)


def _old_child_visible(table: str) -> str:
    return (
        f"app_role() IN ('platform_admin', 'system') OR EXISTS (SELECT 1 FROM orders o WHERE o.id = {table}.order_id)"
    )


def _policy(table: str, visible: str) -> None:
    op.execute(f"DROP POLICY IF EXISTS tenant_access ON {table}")
    op.execute(f"CREATE POLICY tenant_access ON {table} USING ({visible}) WITH CHECK ({visible})")


# One milestone row's contribution; `sign` is 1 for a new row image and -1 for an old one.
_DELTA = """
    SELECT order_id, {sign} AS milestones,
           {sign} * (status = 'completed')::int AS done,
           {sign} * coalesce(status = 'completed' AND completed_at::date <= due_date, false)::int AS on_time
    FROM {rows}
"""
_APPLY = """
        INSERT INTO order_milestone_stats AS s (order_id, milestones, done, on_time)
        SELECT order_id, sum(milestones), sum(done), sum(on_time) FROM ({deltas}) AS d GROUP BY order_id
        ON CONFLICT (order_id) DO UPDATE SET milestones = s.milestones + excluded.milestones,
                                             done = s.done + excluded.done,
                                             on_time = s.on_time + excluded.on_time;
"""
_NEW = _DELTA.format(sign=1, rows="new_rows")
_OLD = _DELTA.format(sign=-1, rows="old_rows")


def upgrade() -> None:
    policies = {"orders": ORDER_VISIBLE, "quotes": SCHOOL_VISIBLE, "payments_received": SCHOOL_VISIBLE}
    policies |= {table: _child_visible(table) for table in CHILD_TABLES}
    for table, visible in policies.items():
        _policy(table, visible)

    op.execute(
        """
        CREATE TABLE order_milestone_stats (
            order_id uuid PRIMARY KEY REFERENCES orders (id),
            milestones integer NOT NULL DEFAULT 0,
            done integer NOT NULL DEFAULT 0,
            on_time integer NOT NULL DEFAULT 0
        )
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION order_milestone_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {_APPLY.format(deltas=_NEW)}
            ELSIF TG_OP = 'UPDATE' THEN
                {_APPLY.format(deltas=_NEW + " UNION ALL " + _OLD)}
            ELSE
                {_APPLY.format(deltas=_OLD)}
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER milestone_stats_insert AFTER INSERT ON milestones REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION order_milestone_stats_apply()"
    )
    op.execute(
        "CREATE TRIGGER milestone_stats_update AFTER UPDATE ON milestones"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION order_milestone_stats_apply()"
    )
    op.execute(
        "CREATE TRIGGER milestone_stats_delete AFTER DELETE ON milestones REFERENCING OLD TABLE AS old_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION order_milestone_stats_apply()"
    )
    op.execute(
        f"""
        INSERT INTO order_milestone_stats (order_id, milestones, done, on_time)
        SELECT order_id, sum(milestones), sum(done), sum(on_time) FROM ({_DELTA.format(sign=1, rows="milestones")}) AS d
        GROUP BY order_id
        """
    )
    # The triggers run as the acting role, so the app role writes the counters as it writes milestones; the
    # counters are visible exactly when their order is, like every other child table.
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON order_milestone_stats TO {APP_ROLE}")
    op.execute("ALTER TABLE order_milestone_stats ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE order_milestone_stats FORCE ROW LEVEL SECURITY")
    _policy("order_milestone_stats", _child_visible("order_milestone_stats"))


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS milestone_stats_{event} ON milestones")
    op.execute("DROP FUNCTION IF EXISTS order_milestone_stats_apply()")
    op.execute("DROP TABLE IF EXISTS order_milestone_stats")
    policies = {"orders": OLD_ORDER_VISIBLE, "quotes": OLD_SCHOOL_VISIBLE, "payments_received": OLD_SCHOOL_VISIBLE}
    policies |= {table: _old_child_visible(table) for table in CHILD_TABLES}
    for table, visible in policies.items():
        _policy(table, visible)
