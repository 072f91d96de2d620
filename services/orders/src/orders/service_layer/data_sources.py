"""Where the school's legacy data lives: uploaded CSV files and (encrypted) PostgreSQL connection strings."""

from __future__ import annotations

import csv
import io
from uuid import UUID, uuid4

from servicekit.problems import Problem
from sqlalchemy import select

from orders.adapters.secrets import SecretBox
from orders.adapters.tables import DataSourceRow
from orders.adapters.uploads import UploadStore
from orders.service_layer.access import visible_order
from orders.service_layer.commands import RegisterPostgresSource
from orders.service_layer.unit_of_work import UnitOfWork

CLOSED = ("completed", "cancelled")


async def list_sources(uow: UnitOfWork, order_id: UUID) -> list[DataSourceRow]:
    await visible_order(uow.session, uow.actor, order_id)
    rows = await uow.session.execute(
        select(DataSourceRow).where(DataSourceRow.order_id == order_id).order_by(DataSourceRow.created_at)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def register_postgres(
    uow: UnitOfWork, order_id: UUID, command: RegisterPostgresSource, box: SecretBox
) -> DataSourceRow:
    order = await visible_order(uow.session, uow.actor, order_id)
    _open_for_sources(order.status)
    source_id = uuid4()
    row = DataSourceRow(
        id=source_id,
        order_id=order.id,
        school_id=order.school_id,
        kind="postgres",
        name=command.name,
        entity=command.entity,
        estimated_rows=command.estimated_rows,
        location=f"secret://orders/data-sources/{source_id}",
        secret=box.seal(command.dsn),
        created_by=uow.actor.sub,
    )
    uow.session.add(row)
    await uow.session.flush()
    await uow.audit("data_source", row.id, "register", after={"kind": "postgres", "name": row.name})
    return row


async def register_csv(
    uow: UnitOfWork,
    order_id: UUID,
    *,
    name: str,
    entity: str | None,
    content: bytes,
    store: UploadStore,
) -> DataSourceRow:
    order = await visible_order(uow.session, uow.actor, order_id)
    _open_for_sources(order.status)
    rows = _count_csv_rows(content)
    source_id = uuid4()
    location = store.location(order.id, source_id)
    row = DataSourceRow(
        id=source_id,
        order_id=order.id,
        school_id=order.school_id,
        kind="csv",
        name=name,
        entity=entity,
        estimated_rows=rows,
        location=location,
        size_bytes=len(content),
        created_by=uow.actor.sub,
    )
    uow.session.add(row)
    await uow.session.flush()
    await uow.audit("data_source", row.id, "upload", after={"kind": "csv", "name": name, "rows": rows})
    # Written once the row is: input the database refuses (a NUL in the name) leaves no file behind.
    await store.save(order.id, source_id, content)
    return row


def _open_for_sources(status: str) -> None:
    if status in CLOSED:
        raise Problem(409, "Order closed", f"Data sources cannot be added to a {status} order.")


def _count_csv_rows(content: bytes) -> int:
    try:
        text = content.decode("utf-8-sig")
        records = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise Problem(422, "Invalid CSV", f"The file is not a readable UTF-8 CSV: {exc}") from None
    if not records or not any(records[0]):
        raise Problem(422, "Invalid CSV", "The file has no header row.")
    return max(0, len(records) - 1)
