"""The rate limit is shared by every replica (windows in Redis), and an unreachable Redis fails open."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import httpx
import pytest
from orders.bootstrap import build_runtime, create_app
from orders.entrypoints.http import rate_limit
from orders.settings import Settings
from prometheus_client import REGISTRY
from servicekit.testing import unique_name

from ..conftest import bearer
from .helpers import ORDERS

pytestmark = pytest.mark.integration


@asynccontextmanager
async def replica(database_url: str, namespace: str, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """One orders app instance (its own runtime, pool and Redis client), as a second replica would be."""
    settings = Settings(
        database_url=database_url,
        broker_namespace=namespace,
        log_json=False,
        rate_limit_requests=3,
        outbox_enabled=False,
        **overrides,  # type: ignore[arg-type]
    )
    runtime = build_runtime(settings)
    app = create_app(settings, runtime)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://orders") as client:
            yield client
    finally:
        await app.state.rate_limiter.close()
        await runtime.db.dispose()


async def test_two_replicas_share_one_limit(orders_db: str) -> None:
    namespace = unique_name("t") + "."  # both replicas of one deployment: the same namespace, the same windows
    headers = bearer(school_id=uuid4())
    async with replica(orders_db, namespace) as first, replica(orders_db, namespace) as second:
        answers = [await client.get(ORDERS, headers=headers) for client in (first, second, first, second)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # Another client still has its own window on either replica.
        assert (await first.get(ORDERS, headers=bearer(school_id=uuid4(), sub="other"))).status_code == 200


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_an_unreachable_redis_lets_requests_through_with_a_warning_and_a_metric(
    orders_db: str, unused_tcp_port: int
) -> None:
    before = _unavailable()
    headers = bearer(school_id=uuid4())
    # On the limiter's own logger: the service's logging setup replaces the root handlers.
    records, logger = Records(), logging.getLogger(rate_limit.__name__)
    logger.addHandler(records)
    try:
        async with replica(orders_db, unique_name("t") + ".", redis_url=f"redis://127.0.0.1:{unused_tcp_port}/0") as c:
            answers = [await c.get(ORDERS, headers=headers) for _ in range(5)]
    finally:
        logger.removeHandler(records)
    assert [a.status_code for a in answers] == [200] * 5  # over the limit of 3, and still served
    assert all("RateLimit-Remaining" not in a.headers for a in answers)
    assert _unavailable() - before == 5
    warnings = [r for r in records.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per request


def _unavailable() -> float:
    return REGISTRY.get_sample_value("orders_rate_limit_unavailable_total") or 0.0
