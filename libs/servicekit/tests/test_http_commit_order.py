"""A request's transaction commits before its response leaves: a client told 201 can read what it
wrote with its very next request, and a commit that fails is never answered with a success."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, MutableMapping
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from servicekit.http import SessionDep


class _RecordingDatabase:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[object]:
        yield object()
        self.events.append("commit")


async def _call(app: FastAPI, events: list[str]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        events.append(message["type"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/write",
        "raw_path": b"/write",
        "query_string": b"",
        "headers": [],
        "server": ("test", 80),
        "client": ("test", 1),
        "root_path": "",
    }
    await app(scope, receive, send)


async def test_the_commit_happens_before_the_response_is_sent() -> None:
    events: list[str] = []
    app = FastAPI()
    app.state.runtime = SimpleNamespace(db=_RecordingDatabase(events))

    @app.post("/write", status_code=201)
    async def write(session: SessionDep) -> dict[str, str]:
        events.append("route")
        return {"written": "yes"}

    await _call(app, events)
    assert events == ["route", "commit", "http.response.start", "http.response.body"]
