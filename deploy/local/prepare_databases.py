"""Create each service's database if missing and apply its Alembic migrations (idempotent)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
from servicekit.alembic_env import upgrade

ROOT = Path(__file__).resolve().parents[2]
ADMIN_DSN = os.environ.get("POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASES = {
    "orders": ROOT / "services/orders/alembic.ini",
    "payments": ROOT / "services/payments/alembic.ini",
    "notifications": ROOT / "services/notifications/alembic.ini",
    "migrations": ROOT / "services/migration-worker/alembic.ini",
}


async def create_missing(names: list[str]) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
                print(f"created database {name}")
    finally:
        await conn.close()


def main() -> int:
    asyncio.run(create_missing(list(DATABASES)))
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    for name, ini in DATABASES.items():
        if not ini.exists():
            print(f"{name}: no migrations yet ({ini.relative_to(ROOT)} missing)", file=sys.stderr)
            continue
        upgrade(ini, f"{base}/{name}")
        print(f"{name}: migrations applied")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
