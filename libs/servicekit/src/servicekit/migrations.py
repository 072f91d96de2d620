"""Alembic helpers: a service's first revision calls these to create the messaging tables."""

from __future__ import annotations

from alembic import op

from servicekit.tables import NOTIFY_TRIGGER_SQL, inbox, outbox


def create_messaging_tables() -> None:
    bind = op.get_bind()
    outbox.create(bind)
    inbox.create(bind)
    for statement in _split(NOTIFY_TRIGGER_SQL):
        op.execute(statement)


def drop_messaging_tables() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("inbox")
    op.drop_table("outbox")


def _split(sql: str) -> list[str]:
    """Split on the statement ends outside the function body ($$ ... $$)."""
    statements, current, in_body = [], [], False
    for line in sql.strip().splitlines():
        current.append(line)
        if line.count("$$") % 2 == 1:
            in_body = not in_body
        if not in_body and line.rstrip().endswith(";"):
            statements.append("\n".join(current))
            current = []
    return statements
