"""Migrations and services as they run in compose and Kubernetes: logged in as the service's own
non-superuser role (LOGIN CREATEROLE, owning only its database), never as `postgres`."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from servicekit.alembic_env import upgrade
from servicekit.testing import ADMIN_DSN, database_url

from tests.deploy.manifests import ROOT, SERVICES, Service, settings_class

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class OwnedDatabase:
    role: str
    database: str

    @property
    def dsn(self) -> str:
        return database_url(self.database, driver="postgresql").replace("postgres@", f"{self.role}@", 1)

    @property
    def url(self) -> str:
        return database_url(self.database).replace("postgres@", f"{self.role}@", 1)


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def owned_database(request: pytest.FixtureRequest) -> Iterator[OwnedDatabase]:
    """A login role like compose's and CloudNativePG's (LOGIN CREATEROLE) owning a fresh database."""
    name = f"test_ops_{request.node.callspec.id.replace('-', '_')}_{secrets.token_hex(3)}"
    owned = OwnedDatabase(role=name, database=name)
    asyncio.run(_admin(f'CREATE ROLE "{name}" LOGIN CREATEROLE', f'CREATE DATABASE "{name}" OWNER "{name}"'))
    try:
        yield owned
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{name}"'))


@pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])
def test_migrations_run_as_the_services_own_role(service: Service, owned_database: OwnedDatabase) -> None:
    ini = ROOT / "services" / service.name / "alembic.ini"
    assert ini.exists(), f"{service.name} has no alembic.ini: its migration Job and compose step would fail"
    upgrade(ini, owned_database.url)

    async def check() -> None:
        conn = await asyncpg.connect(owned_database.dsn)
        try:
            assert await conn.fetchval("SELECT NOT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
            # A service that drops to a less privileged role per connection must be allowed to.
            app_role = getattr(settings_class(service)(), "db_role", None)
            if app_role is not None:
                await conn.execute(f'SET ROLE "{app_role}"')
                assert await conn.fetchval("SELECT current_user") == app_role
        finally:
            await conn.close()

    asyncio.run(check())
