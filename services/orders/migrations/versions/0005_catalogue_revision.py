"""A revision stamp for the catalogue, so each process can keep its copy and know when it is stale.

Every order and quote prices against the current packages and add-ons: two queries per request for a handful
of rows that change a few times a year. `catalogue_revision` holds one random stamp, replaced by a statement
trigger whenever `care_packages` or `add_ons` change, in the same transaction. A unit of work reads the stamp in
the statement it opens with anyway (the tenant settings), and pricing reuses the process's copy of the
catalogue while the stamp is the one that copy was read under. Random rather than a counter, so a copy read
from one database can never pass for another database's (tests run many in one process).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APP_ROLE = "orders_app"
CATALOGUE_TABLES = ("care_packages", "add_ons")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE catalogue_revision (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            stamp uuid NOT NULL DEFAULT gen_random_uuid()
        )
        """
    )
    op.execute("INSERT INTO catalogue_revision DEFAULT VALUES")
    op.execute(
        """
        CREATE FUNCTION restamp_catalogue() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE catalogue_revision SET stamp = gen_random_uuid();
            RETURN NULL;
        END $$
        """
    )
    for table in CATALOGUE_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_restamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION restamp_catalogue()"
        )
    # The trigger runs as the acting role: the app role edits the catalogue, so it replaces the stamp too.
    op.execute(f"GRANT SELECT, UPDATE ON catalogue_revision TO {APP_ROLE}")


def downgrade() -> None:
    for table in CATALOGUE_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_restamp ON {table}")
    op.execute("DROP FUNCTION IF EXISTS restamp_catalogue()")
    op.execute("DROP TABLE IF EXISTS catalogue_revision")
