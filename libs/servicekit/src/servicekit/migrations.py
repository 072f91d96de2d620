"""Alembic helpers: a service's first revision calls these to create the messaging tables."""

from __future__ import annotations

from alembic import op

from servicekit.tables import inbox, outbox


def create_messaging_tables() -> None:
    bind = op.get_bind()
    outbox.create(bind)
    inbox.create(bind)


def drop_messaging_tables() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")
