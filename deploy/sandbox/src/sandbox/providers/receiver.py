"""A webhook receiver for testing the platform's OUTBOUND webhooks: records everything, fails on request."""

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

router = APIRouter(prefix="/receiver", tags=["receiver"])
control = APIRouter(prefix="/_sandbox/receiver", tags=["control: receiver"])


class ReceiverBehaviour(BaseModel):
    fail_next: int = Field(default=0, ge=0, description="answer the next N requests with status")
    status: int = Field(default=500, ge=400, le=599)
    delay_ms: int = Field(default=0, ge=0, le=600_000, description="pause before answering every request")


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    answered: int
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8", errors="replace"),
            "body_base64": base64.b64encode(self.body).decode(),
            "answered": self.answered,
            "received_at": self.received_at.isoformat(),
        }


class ReceiverStore:
    def __init__(self) -> None:
        self.requests: dict[str, list[ReceivedRequest]] = {}
        self.behaviours: dict[str, ReceiverBehaviour] = {}

    def reset(self) -> None:
        self.requests.clear()
        self.behaviours.clear()


def _store(request: Request) -> ReceiverStore:
    store: ReceiverStore = request.app.state.sandbox.receiver
    return store


ReceiverStoreDep = Annotated[ReceiverStore, Depends(_store)]


@router.api_route("/{name}", methods=["POST", "PUT", "PATCH"])
@router.api_route("/{name}/{rest:path}", methods=["POST", "PUT", "PATCH"])
async def receive(name: str, request: Request, store: ReceiverStoreDep) -> JSONResponse:
    behaviour = store.behaviours.get(name)
    status = 200
    if behaviour is not None and behaviour.fail_next > 0:
        behaviour.fail_next -= 1
        status = behaviour.status
    body = await request.body()
    # Recorded raw, headers included, so a test can verify a signature over the exact bytes sent.
    store.requests.setdefault(name, []).append(
        ReceivedRequest(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            body=body,
            answered=status,
        )
    )
    if behaviour is not None and behaviour.delay_ms:
        await asyncio.sleep(behaviour.delay_ms / 1000)
    return JSONResponse({"received": status < 400}, status_code=status)


@control.get("/{name}")
async def received(name: str, store: ReceiverStoreDep) -> list[dict[str, Any]]:
    return [r.as_json() for r in store.requests.get(name, [])]


@control.put("/{name}/behaviour")
async def set_behaviour(name: str, behaviour: ReceiverBehaviour, store: ReceiverStoreDep) -> ReceiverBehaviour:
    store.behaviours[name] = behaviour
    return behaviour


@control.delete("/{name}", status_code=204)
async def forget(name: str, store: ReceiverStoreDep) -> None:
    store.requests.pop(name, None)
    store.behaviours.pop(name, None)
