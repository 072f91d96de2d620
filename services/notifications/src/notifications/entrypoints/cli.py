"""Operator commands: `python -m notifications rotate-keys`."""

import argparse
import asyncio

from servicekit.db import Database

from notifications.adapters.crypto import PiiVault
from notifications.service_layer.key_rotation import rotate
from notifications.settings import Settings


async def _rotate_keys(settings: Settings, batch_size: int) -> None:
    db = Database(settings.database_url)
    try:
        counts = await rotate(db, PiiVault(settings.pii_keys, settings.pii_hash_key), batch_size=batch_size)
    finally:
        await db.dispose()
    for table, n in counts.items():
        print(f"{table}: {n} row(s) re-encrypted under the first key")


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m notifications")
    commands = parser.add_subparsers(dest="command", required=True)
    rotate_keys = commands.add_parser("rotate-keys", help="re-encrypt PII under the first NOTIFICATIONS_PII_KEYS key")
    rotate_keys.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    if args.command == "rotate-keys":
        asyncio.run(_rotate_keys(Settings(), args.batch_size))
