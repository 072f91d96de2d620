"""Route dependencies: the unit of work for the calling principal, today's date, the service's stores.

All `async def`, even where nothing is awaited: FastAPI runs a plain `def` dependency in a worker thread.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Request
from servicekit.http import CurrentPrincipal, SessionDep

from orders.adapters.secrets import SecretBox
from orders.adapters.uploads import UploadStore
from orders.service_layer.unit_of_work import Actor, UnitOfWork


async def unit_of_work(session: SessionDep, principal: CurrentPrincipal) -> UnitOfWork:
    return await UnitOfWork(session, Actor.of(principal)).begin()


async def today() -> date:
    return datetime.now(UTC).date()


async def secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


async def upload_store(request: Request) -> UploadStore:
    store: UploadStore = request.app.state.upload_store
    return store


UowDep = Annotated[UnitOfWork, Depends(unit_of_work)]
TodayDep = Annotated[date, Depends(today)]
SecretBoxDep = Annotated[SecretBox, Depends(secret_box)]
UploadStoreDep = Annotated[UploadStore, Depends(upload_store)]
