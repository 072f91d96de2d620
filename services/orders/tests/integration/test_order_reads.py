"""The fast read paths answer exactly what the plain ones do: a new order's body, and the paged list's total."""

from uuid import uuid4

import httpx
import pytest

from ..conftest import bearer
from .helpers import ORDER, ORDERS

pytestmark = pytest.mark.integration


async def test_a_new_order_is_answered_as_it_is_read_back(app_client: httpx.AsyncClient) -> None:
    school = bearer(school_id=uuid4())
    created = await app_client.post(ORDERS, json={**ORDER, "payment_option": "extended", "months": 4}, headers=school)
    assert created.status_code == 201, created.text
    body = created.json()
    assert [p["sequence"] for p in body["payments"]] == [1, 2, 3, 4]
    assert body == (await app_client.get(f"{ORDERS}/{body['id']}", headers=school)).json()
    # A retry with the same key answers the stored order, read back whole.
    key = {**school, "Idempotency-Key": "reads-1"}
    first = (await app_client.post(ORDERS, json=ORDER, headers=key)).json()
    assert (await app_client.post(ORDERS, json=ORDER, headers=key)).json() == first


async def test_the_paged_list_counts_every_visible_order_on_every_page(app_client: httpx.AsyncClient) -> None:
    school = bearer(school_id=uuid4())
    ids = [(await app_client.post(ORDERS, json=ORDER, headers=school)).json()["id"] for _ in range(5)]
    pages = [(await app_client.get(ORDERS, params={"limit": 2, "offset": o}, headers=school)).json() for o in (0, 2, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [o["id"] for p in pages for o in p["items"]] == list(reversed(ids))  # newest first
    past_the_end = (await app_client.get(ORDERS, params={"limit": 2, "offset": 10}, headers=school)).json()
    assert (past_the_end["items"], past_the_end["total"]) == ([], 5)
    nobody = (await app_client.get(ORDERS, headers=bearer(school_id=uuid4()))).json()
    assert (nobody["items"], nobody["total"]) == ([], 0)
    pending = (await app_client.get(ORDERS, params={"status": "approved"}, headers=school)).json()
    assert pending["total"] == 0
