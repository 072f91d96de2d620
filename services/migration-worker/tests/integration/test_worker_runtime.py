"""The running worker on the real RabbitMQ: start_job from orders runs the whole pipeline once, however
often it is delivered; the status API answers with JSON, problem+json and a live HTML page."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from contracts.envelope import Envelope
from contracts.migrations import DataSource, StartJob
from migration_worker.bootstrap import create_app
from migration_worker.plans import SHIPPED
from migration_worker.settings import Settings
from servicekit.testing import delete_namespace, unique_name
from servicekit.topology import events_exchange
from sqlalchemy import text

pytestmark = pytest.mark.integration
PLAN = "bookings-to-users"


@pytest.fixture
async def worker(
    worker_db: str, make_target: Callable[..., Any], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    namespace = unique_name("t") + "."
    settings = Settings(
        database_url=worker_db,
        target_database_url=await make_target(PLAN),
        broker_namespace=namespace,
        log_json=False,
        log_dir=str(tmp_path / "log"),
        scheduler_poll_seconds=0.5,
        progress_interval_seconds=0.2,
    )
    app = create_app(settings)
    runtime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker") as client:
            yield client, runtime
    finally:
        await runtime.stop()
        await delete_namespace(namespace, runtime.consumers.queue_names(), settings.retry_delays_ms)


async def _publish(runtime: Any, envelope: Envelope[Any]) -> None:
    await runtime.broker.publish(
        envelope.model_dump_json(),
        exchange=events_exchange(runtime.naming),
        routing_key=envelope.routing_key,
        message_id=str(envelope.event_id),
        content_type="application/json",
        persist=True,
    )


async def _eventually(check: Callable[[], Awaitable[Any]], attempts: int = 300) -> Any:
    for _ in range(attempts):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def _outbox_keys(runtime: Any, job_id: uuid.UUID) -> list[str]:
    async with runtime.db.transaction() as session:
        rows = await session.execute(
            text("SELECT routing_key FROM outbox WHERE body->'data'->>'job_id' = :id ORDER BY created_at"),
            {"id": str(job_id)},
        )
        return [r[0] for r in rows]


def _command(folder: Path, **extra: Any) -> StartJob:
    return StartJob(
        job_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        school_id=uuid.uuid4(),
        plan=PLAN,
        data_sources=[
            DataSource(source_id=uuid.uuid4(), kind="csv", name="bookings", location=f"file://{folder}/bookings.csv")
        ],
        **extra,
    )


async def test_start_job_runs_the_pipeline_once(worker: tuple[httpx.AsyncClient, Any], tmp_path: Path) -> None:
    client, runtime = worker
    SHIPPED[PLAN].generate(tmp_path / "data", 300)
    command = _command(tmp_path / "data")
    envelope = Envelope.wrap(command, school_id=command.school_id)
    await _publish(runtime, envelope)
    await _publish(runtime, envelope)  # a duplicate delivery

    async def completed() -> dict[str, Any] | None:
        response = await client.get(f"/api/v1/migrations/jobs/{command.job_id}")
        body = response.json() if response.status_code == 200 else {}
        return body if body.get("status") in ("completed", "failed") else None

    status = await _eventually(completed)
    assert status["status"] == "completed", status
    assert status["report"]["rows_migrated"] > 0
    assert status["dry_run"]["verdict"] == "go"
    keys = await _outbox_keys(runtime, command.job_id)
    assert keys.count("migrations.dry_run_completed.v1") == 1
    assert keys.count("migrations.job_completed.v1") == 1
    assert "migrations.job_progress.v1" in keys

    report = await client.get(f"/api/v1/migrations/jobs/{command.job_id}/report", params={"format": "markdown"})
    assert report.status_code == 200
    assert "→" in report.text
    page = await client.get(f"/migrations/jobs/{command.job_id}/status")
    assert page.status_code == 200
    assert "<progress" in page.text


async def test_scheduled_job_announces_itself_and_waits(worker: tuple[httpx.AsyncClient, Any], tmp_path: Path) -> None:
    client, runtime = worker
    SHIPPED[PLAN].generate(tmp_path / "data", 50)
    command = _command(tmp_path / "data", scheduled_for=datetime.now(UTC) + timedelta(hours=26))
    await _publish(runtime, Envelope.wrap(command, school_id=command.school_id))

    async def announced() -> list[str]:
        return await _outbox_keys(runtime, command.job_id)

    assert await _eventually(announced) == ["migrations.job_scheduled.v1"]
    status = (await client.get(f"/api/v1/migrations/jobs/{command.job_id}")).json()
    assert status["status"] == "scheduled"


async def test_status_api_errors_are_problem_documents(worker: tuple[httpx.AsyncClient, Any]) -> None:
    client, _ = worker
    missing = await client.get(f"/api/v1/migrations/jobs/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad = await client.get("/api/v1/migrations/jobs/not-a-uuid")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/healthz")).status_code == 200
