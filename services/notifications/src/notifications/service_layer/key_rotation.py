"""Re-encrypting PII under the newest key, in small batches, while the service keeps running.

Deploy with the new key first in `NOTIFICATIONS_PII_KEYS` (old keys after it: they still decrypt),
then run `python -m notifications rotate-keys`. Each batch is one short transaction that locks only
its rows (SKIP LOCKED), so sends and API calls go on. When it reports nothing left, drop the old key.
"""

import logging
from dataclasses import dataclass

from servicekit.db import Database
from sqlalchemy import text

from notifications.adapters.crypto import PiiVault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncryptedColumns:
    table: str
    key: str
    columns: tuple[str, ...]


ENCRYPTED: tuple[EncryptedColumns, ...] = (
    EncryptedColumns("recipients", "id", ("phone_enc", "email_enc")),
    EncryptedColumns("messages", "id", ("address_enc",)),
    EncryptedColumns("webhook_endpoints", "id", ("secret_enc", "owner_email_enc")),
)


async def rotate(db: Database, vault: PiiVault, *, batch_size: int = 500) -> dict[str, int]:
    """Returns how many rows were re-encrypted per table."""
    rotated: dict[str, int] = {}
    for spec in ENCRYPTED:
        rotated[spec.table] = await _rotate_table(db, vault, spec, batch_size)
    return rotated


async def _rotate_table(db: Database, vault: PiiVault, spec: EncryptedColumns, batch_size: int) -> int:
    done, last = 0, None
    cols = ", ".join(spec.columns)
    while True:
        async with db.transaction() as session:
            after = f"WHERE {spec.key} > :last" if last is not None else ""
            rows = (
                (
                    await session.execute(
                        text(
                            f"SELECT {spec.key} AS k, {cols} FROM {spec.table} {after} "
                            f"ORDER BY {spec.key} LIMIT :n FOR UPDATE SKIP LOCKED"
                        ),
                        {"last": last, "n": batch_size},
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                return done
            for row in rows:
                changes = {
                    c: vault.rotate(row[c]) for c in spec.columns if row[c] is not None and not vault.is_current(row[c])
                }
                if changes:
                    sets = ", ".join(f"{c} = :{c}" for c in changes)
                    await session.execute(
                        text(f"UPDATE {spec.table} SET {sets} WHERE {spec.key} = :k"), {**changes, "k": row["k"]}
                    )
                    done += 1
            last = rows[-1]["k"]
        log.info("re-encrypted %d %s rows so far", done, spec.table)
