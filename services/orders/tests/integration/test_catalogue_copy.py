"""Pricing uses the process's copy of the catalogue only while the database's revision stamp still matches it."""

from uuid import uuid4

import asyncpg
import httpx
from servicekit.testing import ADMIN_DSN

from ..conftest import bearer
from .helpers import ORDER, ORDERS

ENTERPRISE = {**ORDER, "package_code": "enterprise", "student_count": 900, "add_ons": []}


async def _as_another_replica(database_url: str, sql: str) -> None:
    """A change this process does not hear about: made on a connection of its own, as another replica would."""
    conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1])
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _stamp(database_url: str) -> str:
    conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1])
    try:
        return str(await conn.fetchval("SELECT stamp FROM catalogue_revision"))
    finally:
        await conn.close()


async def test_a_catalogue_change_elsewhere_reaches_the_next_order(
    app_client: httpx.AsyncClient, shared_orders_db: str
) -> None:
    school = bearer(school_id=uuid4())
    first = (await app_client.post(ORDERS, json=ENTERPRISE, headers=school)).json()
    again = (await app_client.post(ORDERS, json=ENTERPRISE, headers=school)).json()  # priced from the copy
    assert (first["package_version"], first["total"]["amount_minor"]) == (1, 1_500_000)
    assert (again["package_version"], again["total"]["amount_minor"]) == (1, 1_500_000)

    stamp = await _stamp(shared_orders_db)
    await _as_another_replica(
        shared_orders_db,
        """
        INSERT INTO care_packages (code, version, name, description, price_minor, currency, min_students,
                                   max_students, base_timeline_days, created_by)
        SELECT code, version + 1, name, description, 1700000, currency, min_students, max_students,
               base_timeline_days, 'another-replica'
        FROM care_packages WHERE code = 'enterprise' ORDER BY version DESC LIMIT 1
        """,
    )
    assert await _stamp(shared_orders_db) != stamp  # the trigger replaced the stamp with the change

    after = (await app_client.post(ORDERS, json=ENTERPRISE, headers=school)).json()
    assert (after["package_version"], after["total"]["amount_minor"]) == (2, 1_700_000)


async def test_an_add_on_change_elsewhere_reaches_the_next_order(
    app_client: httpx.AsyncClient, shared_orders_db: str
) -> None:
    school = bearer(school_id=uuid4())
    order = {**ENTERPRISE, "add_ons": ["rush_migration"]}
    before = (await app_client.post(ORDERS, json=order, headers=school)).json()
    await _as_another_replica(shared_orders_db, "UPDATE add_ons SET price_minor = price_minor + 1000")
    after = (await app_client.post(ORDERS, json=order, headers=school)).json()
    assert after["total"]["amount_minor"] - before["total"]["amount_minor"] == 1000
