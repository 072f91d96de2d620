"""The walking skeleton's order endpoints against the real PostgreSQL and RabbitMQ."""

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from uuid import UUID

import httpx
import jwt
import pytest
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET
from sqlalchemy import text

pytestmark = pytest.mark.integration

ORDER = {
    "package_code": "growth",
    "student_count": 450,
    "add_ons": ["rush_migration"],
    "payment_option": "split",
    "currency": "USD",
    "contact": {"name": "Head Teacher", "phone": "+263771234567", "email": "head@school.example", "language": "en"},
}
URL = "/api/v1/migration-services/orders"


async def _counts(client: httpx.AsyncClient) -> tuple[int, int]:
    async with client.app_runtime.db.engine.begin() as conn:  # type: ignore[attr-defined]
        # The app's role sees nothing without a tenant context (row-level security); count as the system.
        await conn.execute(text("SELECT set_config('app.role', 'system', true)"))
        orders = (await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one()
        events = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    return orders, events


async def test_create_order_stores_it_with_its_event(
    orders_client: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    auth = {"Authorization": f"Bearer {token(school_id=school_id)}"}
    created = await orders_client.post(URL, json=ORDER, headers=auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["school_id"] == str(school_id)
    assert body["status"] == "pending"
    assert body["total"] == {"amount_minor": 750000, "currency": "USD"}
    fetched = await orders_client.get(f"{URL}/{body['id']}", headers=auth)
    assert fetched.json()["id"] == body["id"]
    assert await _counts(orders_client) == (1, 1)


def _bad_tokens(school_id: UUID) -> dict[str, str | None]:
    expired = issue_token(DEV_JWT_SECRET, sub="u", role="school_admin", school_id=school_id, ttl=timedelta(seconds=-5))
    forged = issue_token("another-secret-of-sufficient-length-123", sub="u", role="school_admin", school_id=school_id)
    unsigned = jwt.encode({"sub": "u", "role": "platform_admin", "exp": 9999999999}, key=None, algorithm="none")
    return {"missing": None, "expired": expired, "forged": forged, "alg-none": unsigned, "garbage": "abc.def"}


@pytest.mark.parametrize("kind", ["missing", "expired", "forged", "alg-none", "garbage"])
async def test_bad_tokens_are_refused_and_write_nothing(
    orders_client: httpx.AsyncClient, school_id: UUID, kind: str
) -> None:
    bad = _bad_tokens(school_id)[kind]
    headers = {"Authorization": f"Bearer {bad}"} if bad else {}
    response = await orders_client.post(URL, json=ORDER, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert await _counts(orders_client) == (0, 0)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"package_code": "platinum"}', 422),
        (b'{"package_code": "growth", "student_count": "many"}', 422),
        (b'{"package_code": "growth", "student_count": -4, "payment_option": "full", "contact": {"name": "x"}}', 422),
        (
            b'{"package_code": "growth", "student_count": 300, "payment_option": "extended", "contact": {"name": "x"}}',
            422,
        ),
        (
            b'{"package_code": "growth", "student_count": 300, "payment_option": "full", "contact": {"name": "x"}, '
            b'"surprise": 1}',
            422,
        ),
        (b"[" * 2_000_000, 413),
    ],
)
async def test_bad_bodies_get_problem_json_and_write_nothing(
    orders_client: httpx.AsyncClient, token: Callable[..., str], school_id: UUID, body: bytes, status: int
) -> None:
    headers = {"Authorization": f"Bearer {token(school_id=school_id)}", "Content-Type": "application/json"}
    response = await orders_client.post(URL, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert await _counts(orders_client) == (0, 0)


async def test_an_oversized_body_sent_without_a_length_is_a_413(
    orders_client: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse it by
        for _ in range(20):
            yield b"[" * 100_000

    headers = {"Authorization": f"Bearer {token(school_id=school_id)}", "Content-Type": "application/json"}
    response = await orders_client.post(URL, content=chunks(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await _counts(orders_client) == (0, 0)


async def test_other_schools_order_is_not_found(
    orders_client: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    mine = await orders_client.post(URL, json=ORDER, headers={"Authorization": f"Bearer {token(school_id=school_id)}"})
    other = token(school_id=UUID(int=1))
    response = await orders_client.get(f"{URL}/{mine.json()['id']}", headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 404
