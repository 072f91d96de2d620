"""Rate limiting, and bad input on the new endpoints: always problem+json, nothing written."""

from collections.abc import Callable
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from ..conftest import bearer
from .helpers import BASE, ORDER, ORDERS, system_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def rate_limit() -> int:
    return 3


async def test_the_fourth_request_in_a_window_is_limited_per_client_and_endpoint(
    orders_client: httpx.AsyncClient, token: Callable[..., str], school_id: UUID
) -> None:
    headers = {"Authorization": f"Bearer {token(school_id=school_id)}"}
    answers = [await orders_client.get(ORDERS, headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    limited = answers[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1
    # Another endpoint, and another client, each have their own bucket.
    assert (await orders_client.get(f"{BASE}/care-packages", headers=headers)).status_code == 200
    other = {"Authorization": f"Bearer {token(school_id=uuid4(), sub='someone-else')}"}
    assert (await orders_client.get(ORDERS, headers=other)).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/quotes", {"student_count": -1, "payment_option": "full"}, 422),
        ("/quotes", {"student_count": 20, "payment_option": "full"}, 422),
        ("/quotes", {"student_count": 300, "payment_option": "extended", "months": 24}, 422),
        ("/quotes", {"package_code": "platinum", "student_count": 300, "payment_option": "full"}, 422),
        (
            "/quotes",
            {"student_count": 300, "payment_option": "full", "add_ons": ["rush_migration", "rush_migration"]},
            422,
        ),
        ("/quotes", {"student_count": 300, "payment_option": "full", "discount": 50}, 422),
        ("/orders", {**ORDER, "student_count": 20_000}, 422),
        ("/orders", {**ORDER, "student_count": "lots"}, 422),
        ("/orders", {**ORDER, "contact": {"name": ""}}, 422),
    ],
)
async def test_bad_input_is_a_problem_and_writes_nothing(
    app_client: httpx.AsyncClient, path: str, body: dict[str, object], status: int
) -> None:
    school_id = uuid4()
    response = await app_client.post(f"{BASE}{path}", json=body, headers=bearer(school_id=school_id))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    for table in ("orders", "quotes"):
        rows = await system_rows(app_client, f"SELECT count(*) AS n FROM {table} WHERE school_id = :s", s=school_id)
        assert rows[0]["n"] == 0


async def test_bad_status_changes_and_data_sources(app_client: httpx.AsyncClient) -> None:
    school_id = uuid4()
    school = bearer(school_id=school_id)
    admin = bearer("platform_admin", sub="admin-p")
    oid = (await app_client.post(ORDERS, json=ORDER, headers=school)).json()["id"]
    cases = [
        ("PATCH", f"{ORDERS}/{oid}/status", {"status": "launched"}, 422),
        ("PATCH", f"{ORDERS}/{oid}/status", {"status": "approved", "override": True}, 422),
        ("POST", f"{ORDERS}/{oid}/data-sources", {"kind": "postgres", "name": "x", "dsn": "mysql://x"}, 422),
        (
            "POST",
            f"{ORDERS}/{oid}/data-sources",
            {"kind": "postgres", "name": "x", "dsn": "postgresql://x", "y": 1},
            422,
        ),
        (
            "POST",
            f"{ORDERS}/{oid}/data-sources",
            {"kind": "postgres", "name": "x", "dsn": "postgresql://h/db", "estimated_rows": 3_000_000_000},
            422,
        ),
        ("POST", f"{ORDERS}/{oid}/team", {"members": []}, 422),
        ("POST", f"{ORDERS}/{oid}/tasks", {"title": "t", "due_date": "someday"}, 422),
        ("GET", f"{ORDERS}/not-a-uuid", None, 422),
        ("GET", f"{ORDERS}/{uuid4()}", None, 404),
    ]
    for method, url, body, status in cases:
        response = await app_client.request(method, url, json=body, headers=admin)
        assert response.status_code == status, (url, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    bad_csv = await app_client.post(
        f"{ORDERS}/{oid}/data-sources",
        files={"file": ("x.csv", b"\xff\xfe\x00bad", "text/csv")},
        data={"name": "broken"},
        headers=school,
    )
    assert bad_csv.status_code == 422
    # As a server answers it: the app's exception handler sends the 422, the test transport would re-raise.
    transport = httpx.ASGITransport(app=app_client.asgi_app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as served:
        nul_name = await served.post(
            f"{ORDERS}/{oid}/data-sources",
            files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")},
            data={"name": "a\x00b"},
            headers=school,
        )
    assert nul_name.status_code == 422, nul_name.text
    uploads = Path(app_client.app_runtime.settings.upload_dir) / oid  # type: ignore[attr-defined]
    assert not uploads.exists() or not any(uploads.iterdir())  # no file without its row
    plain = await app_client.post(
        f"{ORDERS}/{oid}/data-sources", content=b"hello", headers={**school, "Content-Type": "text/plain"}
    )
    assert plain.status_code == 415
    malformed = await app_client.post(
        f"{ORDERS}/{oid}/data-sources", content=b"{oops", headers={**school, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    rows = await system_rows(app_client, "SELECT status FROM orders WHERE id = :o", o=UUID(oid))
    assert rows == [{"status": "pending"}]
    sources = await system_rows(app_client, "SELECT count(*) AS n FROM data_sources WHERE order_id = :o", o=UUID(oid))
    assert sources[0]["n"] == 0
