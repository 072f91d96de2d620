"""Orders test fixtures: a migrated throwaway database, a running app in-process, tokens."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from orders.bootstrap import build_runtime, create_app
from orders.settings import Settings
from servicekit.alembic_env import upgrade_async
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET
from servicekit.testing import create_database, delete_namespace, drop_database, migrated_database, unique_name

ALEMBIC_INI = Path(__file__).parents[1] / "alembic.ini"


@pytest.fixture
async def orders_db() -> AsyncIterator[str]:
    async with migrated_database("test_orders", ALEMBIC_INI) as url:
        yield url


@pytest.fixture
async def orders_client(orders_db: str, tmp_path: Path, rate_limit: int) -> AsyncIterator[httpx.AsyncClient]:
    namespace = unique_name("t") + "."
    settings = Settings(
        database_url=orders_db,
        broker_namespace=namespace,
        log_json=False,
        upload_dir=str(tmp_path / "uploads"),
        rate_limit_requests=rate_limit,
    )
    runtime = build_runtime(settings)
    app = create_app(settings, runtime)
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://orders") as client:
            client.app_runtime = runtime  # type: ignore[attr-defined]
            client.asgi_app = app  # type: ignore[attr-defined]
            yield client
    finally:
        await runtime.stop()
        await delete_namespace(namespace, runtime.consumers.queue_names(), settings.retry_delays_ms)


@pytest.fixture
def rate_limit() -> int:
    """Requests per minute per client and endpoint; generous unless a test overrides this fixture."""
    return 10_000


@pytest.fixture
def token() -> Callable[..., str]:
    def make(role: str = "school_admin", school_id: UUID | None = None, sub: str = "user-1") -> str:
        return issue_token(DEV_JWT_SECRET, sub=sub, role=role, school_id=school_id)  # type: ignore[arg-type]

    return make


@pytest.fixture
def school_id() -> UUID:
    return uuid4()


@pytest.fixture(scope="module")
async def shared_orders_db() -> AsyncIterator[str]:
    """One migrated database per test module: tests keep apart by using their own school ids."""
    name = unique_name("test_orders")
    url = await create_database(name)
    await upgrade_async(ALEMBIC_INI, url)
    try:
        yield url
    finally:
        await drop_database(name)


@pytest.fixture(scope="module")
async def app_client(
    shared_orders_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    namespace = unique_name("t") + "."
    settings = Settings(
        database_url=shared_orders_db,
        broker_namespace=namespace,
        log_json=False,
        upload_dir=str(tmp_path_factory.mktemp("uploads")),
        rate_limit_requests=100_000,
        # Nothing is bound to this namespace's orders events: tests read the outbox rows instead of relaying them.
        outbox_enabled=False,
    )
    runtime = build_runtime(settings)
    app = create_app(settings, runtime)
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://orders") as client:
            client.app_runtime = runtime  # type: ignore[attr-defined]
            client.asgi_app = app  # type: ignore[attr-defined]
            yield client
    finally:
        await runtime.stop()
        await delete_namespace(namespace, runtime.consumers.queue_names(), settings.retry_delays_ms)


def bearer(role: str = "school_admin", school_id: UUID | None = None, sub: str = "user-1") -> dict[str, str]:
    token = issue_token(DEV_JWT_SECRET, sub=sub, role=role, school_id=school_id)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}
