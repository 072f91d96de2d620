"""Errors become RFC 9457 problem documents; an unreachable dependency is a 503, not a 500."""

import httpx
import pytest
from fastapi import FastAPI
from servicekit.problems import install_problem_handlers, is_unavailable


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


@pytest.mark.parametrize(
    ("exc", "status"),
    [(ConnectionRefusedError(111, "refused"), 503), (RuntimeError("bug"), 500)],
)
async def test_unexpected_errors_are_problem_documents(exc: Exception, status: int) -> None:
    transport = httpx.ASGITransport(app=_app(exc), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


async def test_a_client_hanging_up_mid_body_is_not_logged_as_our_error(caplog: pytest.LogCaptureFixture) -> None:
    from starlette.requests import ClientDisconnect

    transport = httpx.ASGITransport(app=_app(ClientDisconnect()), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom")
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_a_wrapped_connection_failure_counts_as_unavailable() -> None:
    outer = RuntimeError("while running the use case")
    outer.__cause__ = ConnectionRefusedError(111, "refused")
    assert is_unavailable(outer)
    assert not is_unavailable(ValueError("bad input"))
