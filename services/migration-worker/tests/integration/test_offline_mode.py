"""Offline mode keeps other users out of the target for the run and lets them back in afterwards,
also when the run fails."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from migration_worker.adapters.sources import CsvFolderSource, SourceError
from migration_worker.domain.plan import load_plan
from migration_worker.engine.engine import MigrationEngine
from migration_worker.engine.progress import Progress
from migration_worker.plans import SHIPPED
from servicekit.testing import ADMIN_DSN, unique_name

pytestmark = pytest.mark.integration
PLAN = "bookings-to-users"


async def _can_connect(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InsufficientPrivilegeError):
        return False
    await conn.close()
    return True


@pytest.mark.parametrize("fail", [False, True])
async def test_offline_mode_blocks_and_always_restores(
    fail: bool, make_target: Callable[..., Any], tmp_path: Path
) -> None:
    dsn = await make_target(PLAN)
    role = unique_name("test_mig_user")
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    user_dsn = dsn.replace("postgres@", f"{role}@", 1)
    try:
        assert await _can_connect(user_dsn)
        SHIPPED[PLAN].generate(tmp_path, 100)
        seen_during_run: list[bool] = []

        async def probe(p: Progress) -> None:
            if p.phase == "backup":
                seen_during_run.append(await _can_connect(user_dsn))

        source = CsvFolderSource(tmp_path / "missing" if fail else tmp_path)
        engine = MigrationEngine(load_plan(SHIPPED[PLAN].plan_file), source, dsn, progress=[probe])
        if fail:
            with pytest.raises(SourceError):
                await engine.run(str(uuid.uuid4()), offline=True)
        else:
            await engine.run(str(uuid.uuid4()), offline=True)
        assert seen_during_run == [False]
        assert await _can_connect(user_dsn)
    finally:
        database = dsn.rsplit("/", 1)[1]
        await admin.execute(f'REVOKE ALL ON DATABASE "{database}" FROM "{role}"')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
