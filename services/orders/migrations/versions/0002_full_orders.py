"""Catalogue, quotes, the full order, tasks, milestones, data sources, read models, audit log,
the application's own database role and row-level security on every tenant table.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The role the service connects as. It is not a superuser and owns nothing, so RLS applies to it.
APP_ROLE = "orders_app"

TABLES = """
CREATE TABLE care_packages (
    code text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency text NOT NULL,
    min_students integer NOT NULL CHECK (min_students >= 0),
    max_students integer,
    base_timeline_days integer NOT NULL CHECK (base_timeline_days > 0),
    created_by text NOT NULL DEFAULT 'seed',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version)
);
CREATE TABLE add_ons (
    code text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency text NOT NULL,
    timeline_percent integer NOT NULL DEFAULT 100,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version)
);
CREATE TABLE exchange_rates (
    id bigserial PRIMARY KEY,
    currency text NOT NULL,
    rate numeric(20, 6) NOT NULL CHECK (rate > 0),
    effective_date date NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (currency, effective_date)
);
CREATE TABLE team_members (
    member text PRIMARY KEY,
    capacity integer NOT NULL DEFAULT 3 CHECK (capacity > 0)
);
CREATE TABLE quotes (
    id uuid PRIMARY KEY,
    school_id uuid,
    created_by text NOT NULL,
    body jsonb NOT NULL,
    package_code text NOT NULL,
    total_minor bigint NOT NULL,
    currency text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quotes_school_created ON quotes (school_id, created_at);
CREATE INDEX quotes_created ON quotes (created_at);

ALTER TABLE orders
    ADD COLUMN package_version integer NOT NULL DEFAULT 1,
    ADD COLUMN lines jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN installments jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN exchange_rate jsonb,
    ADD COLUMN held_from text,
    ADD COLUMN team text[] NOT NULL DEFAULT '{}',
    ADD COLUMN team_lead text,
    ADD COLUMN timeline_days integer NOT NULL DEFAULT 0,
    ADD COLUMN assessment jsonb,
    ADD COLUMN quote_id uuid,
    ADD COLUMN idempotency_key text,
    ADD COLUMN notes text,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN closed_at timestamptz;
CREATE UNIQUE INDEX orders_idempotency ON orders (school_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX orders_school_created ON orders (school_id, created_at DESC, id);
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_team ON orders USING gin (team);

CREATE TABLE milestones (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    school_id uuid NOT NULL,
    sequence integer NOT NULL,
    name text NOT NULL,
    due_date date,
    status text NOT NULL DEFAULT 'pending',
    completed_at timestamptz,
    completed_by text,
    UNIQUE (order_id, sequence)
);
CREATE TABLE tasks (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    school_id uuid NOT NULL,
    title text NOT NULL,
    description text,
    assignee text,
    due_date date,
    status text NOT NULL DEFAULT 'todo',
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_order ON tasks (order_id);
CREATE INDEX tasks_open_due ON tasks (due_date) WHERE status <> 'done';
CREATE TABLE data_sources (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    school_id uuid NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    entity text,
    estimated_rows integer,
    location text NOT NULL,
    secret bytea,
    size_bytes bigint,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX data_sources_order ON data_sources (order_id);
CREATE TABLE installment_payments (
    order_id uuid NOT NULL REFERENCES orders (id),
    school_id uuid NOT NULL,
    sequence integer NOT NULL,
    installment_id uuid,
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL DEFAULT 'planned',
    last_error text,
    paid_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, sequence)
);
CREATE TABLE payments_received (
    payment_id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    school_id uuid NOT NULL,
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    provider text NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX payments_received_at ON payments_received (received_at);
CREATE TABLE migration_jobs (
    job_id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    school_id uuid NOT NULL,
    status text NOT NULL,
    phase text,
    percent integer NOT NULL DEFAULT 0,
    rows_done bigint NOT NULL DEFAULT 0,
    rows_total bigint NOT NULL DEFAULT 0,
    report jsonb,
    reason text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX migration_jobs_order ON migration_jobs (order_id);
CREATE TABLE communication_log (
    message_id uuid NOT NULL,
    event_type text NOT NULL,
    order_id uuid NOT NULL REFERENCES orders (id),
    school_id uuid NOT NULL,
    channel text NOT NULL,
    template text,
    status text NOT NULL,
    detail text,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (message_id, event_type)
);
CREATE INDEX communication_log_order ON communication_log (order_id);
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    actor_role text NOT NULL,
    entity text NOT NULL,
    entity_id text NOT NULL,
    action text NOT NULL,
    before jsonb,
    after jsonb,
    trace_id text
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, id);
"""

# Who is asking is set per transaction with set_config(..., true); unset means nobody: nothing is visible.
FUNCTIONS = """
CREATE FUNCTION app_role() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT coalesce(current_setting('app.role', true), '') $$;
CREATE FUNCTION app_school() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.school_id', true), '')::uuid $$;
CREATE FUNCTION app_user() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT coalesce(current_setting('app.user', true), '') $$;
"""

ORDER_VISIBLE = (
    "app_role() IN ('platform_admin', 'system')"
    " OR (app_role() = 'school_admin' AND school_id = app_school())"
    " OR (app_role() = 'team_member' AND app_user() = ANY (team))"
)
SCHOOL_VISIBLE = (
    "app_role() IN ('platform_admin', 'system') OR (app_role() = 'school_admin' AND school_id = app_school())"
)
# Child rows are visible exactly when their order is; the subquery on orders is itself filtered by RLS.
CHILD_TABLES = ("milestones", "tasks", "data_sources", "installment_payments", "migration_jobs", "communication_log")


def _child_visible(table: str) -> str:
    return f"app_role() = 'system' OR EXISTS (SELECT 1 FROM orders o WHERE o.id = {table}.order_id)"


def upgrade() -> None:
    op.execute(
        f"""
        DO $$ BEGIN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """
    )
    # The service logs in as its own (non-superuser) role and drops to the app role per connection.
    op.execute(f"GRANT {APP_ROLE} TO CURRENT_USER")
    for statement in _statements(TABLES):
        op.execute(statement)
    for statement in _statements(FUNCTIONS, separator="$$;"):
        op.execute(statement)

    policies = {"orders": ORDER_VISIBLE, "quotes": SCHOOL_VISIBLE, "payments_received": SCHOOL_VISIBLE}
    policies |= {table: _child_visible(table) for table in CHILD_TABLES}
    for table, visible in policies.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_access ON {table} USING ({visible}) WITH CHECK ({visible})")
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY audit_read ON audit_log FOR SELECT USING (app_role() IN ('platform_admin', 'system'))")
    op.execute("CREATE POLICY audit_write ON audit_log FOR INSERT WITH CHECK (true)")

    op.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {_database()} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    # Append-only: the application may add audit entries and read them, never change or remove one.
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON alembic_version FROM {APP_ROLE}")

    _seed_catalogue()


def _database() -> str:
    return '"' + op.get_bind().exec_driver_sql("SELECT current_database()").scalar_one() + '"'


def _seed_catalogue() -> None:
    op.execute(
        """
        INSERT INTO care_packages (code, version, name, description, price_minor, currency, min_students,
                                   max_students, base_timeline_days) VALUES
        ('foundation', 1, 'Foundation', 'Small schools: core student, staff and fee records.',
         280000, 'USD', 50, 200, 28),
        ('growth', 1, 'Growth', 'Growing schools: full academic history, timetables and finance.',
         650000, 'USD', 200, 800, 42),
        ('enterprise', 1, 'Enterprise', 'Large schools and groups: unlimited students, multiple campuses.',
         1500000, 'USD', 800, NULL, 70)
        """
    )
    op.execute(
        """
        INSERT INTO add_ons (code, version, name, price_minor, currency, timeline_percent) VALUES
        ('rush_migration', 1, 'Rush migration', 100000, 'USD', 50),
        ('onsite_training', 1, 'On-site training', 80000, 'USD', 100),
        ('weekend_work', 1, 'Weekend work', 50000, 'USD', 100)
        """
    )


def _statements(sql: str, separator: str = ";") -> list[str]:
    parts = [p.strip() for p in sql.split(separator)]
    suffix = "$$" if separator == "$$;" else ""
    return [p + suffix for p in parts if p]


def downgrade() -> None:
    for table in (
        "audit_log",
        "communication_log",
        "migration_jobs",
        "payments_received",
        "installment_payments",
        "data_sources",
        "tasks",
        "milestones",
        "quotes",
        "team_members",
        "exchange_rates",
        "add_ons",
        "care_packages",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP POLICY IF EXISTS tenant_access ON orders")
    op.execute("ALTER TABLE orders NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE orders DISABLE ROW LEVEL SECURITY")
    op.execute("DROP INDEX IF EXISTS orders_idempotency")
    for column in (
        "package_version",
        "lines",
        "installments",
        "exchange_rate",
        "held_from",
        "team",
        "team_lead",
        "timeline_days",
        "assessment",
        "quote_id",
        "idempotency_key",
        "notes",
        "updated_at",
        "approved_at",
        "closed_at",
    ):
        op.execute(f"ALTER TABLE orders DROP COLUMN IF EXISTS {column}")
    for function in ("app_role", "app_school", "app_user"):
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
