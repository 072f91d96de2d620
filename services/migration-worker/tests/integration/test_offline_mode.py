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
from migration_worker.adapters.target_db import offline_mode
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


async def test_connect_is_granted_back_when_ending_other_sessions_fails(make_target: Callable[..., Any]) -> None:
    dsn = await make_target()
    database = dsn.rsplit("/", 1)[1]
    owner, other = unique_name("test_mig_owner"), unique_name("test_mig_user")
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE ROLE "{owner}" LOGIN')
    await admin.execute(f'CREATE ROLE "{other}" LOGIN')
    await admin.execute(f'ALTER DATABASE "{database}" OWNER TO "{owner}"')
    superuser_session = await asyncpg.connect(dsn)  # a role that is no superuser may not end this one
    conn = await asyncpg.connect(dsn.replace("postgres@", f"{owner}@", 1))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with offline_mode(conn):
                raise AssertionError("ending the superuser's session must have failed before the run")
        assert await _can_connect(dsn.replace("postgres@", f"{other}@", 1))
    finally:
        await conn.close()
        await superuser_session.close()
        await admin.execute(f'ALTER DATABASE "{database}" OWNER TO postgres')
        for role in (owner, other):
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
            await admin.execute(f'REVOKE ALL ON DATABASE "{database}" FROM "{role}"')
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
