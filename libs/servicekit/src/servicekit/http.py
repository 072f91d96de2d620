"""FastAPI dependencies every service's routes share (full-stack-fastapi-template style aliases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal, TokenVerifier
from servicekit.problems import Problem
from servicekit.runtime import ServiceRuntime

_bearer = HTTPBearer(auto_error=False, description="JWT with claims sub, role, school_id, exp")


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def _runtime_dependency(request: Request) -> ServiceRuntime:
    # A plain `def` dependency would run in FastAPI's thread pool: a thread hop on every request.
    return get_runtime(request)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    verifier: TokenVerifier = request.app.state.token_verifier
    header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    return verifier.verify(header)


async def transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed after the route returns and before the response is
    sent, rolled back on any error."""
    async with get_runtime(request).db.transaction() as session:
        yield session


def require_role(*roles: str) -> object:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Problem(403, "Forbidden", f"This action needs one of the roles: {', '.join(roles)}.")
        return principal

    return Depends(check)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
# scope="function": the commit runs when the route returns, before the response is sent. With the
# default scope FastAPI sends the response first and commits afterwards, so a client could be told 201
# for a write that then fails to commit, and its next request could miss what it was just told exists
# (seen as a 404 on approving an order just created, in the fault test under load).
SessionDep = Annotated[AsyncSession, Depends(transaction, scope="function")]
RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime_dependency)]
