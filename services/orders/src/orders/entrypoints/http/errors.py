"""Domain errors become problem+json: 422 for a request the rules refuse, 409 for a move the state forbids."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from servicekit.problems import TYPE_BASE, problem_response

from orders.domain.errors import (
    DomainError,
    GuardFailed,
    IllegalTransition,
    MilestoneAlreadyCompleted,
    StudentCountOutOfRange,
)

CONFLICTS = (IllegalTransition, GuardFailed, MilestoneAlreadyCompleted)


def install_domain_error_handler(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        status = 409 if isinstance(exc, CONFLICTS) else 422
        extensions: dict[str, object] = {"code": exc.code}
        if isinstance(exc, IllegalTransition):
            extensions |= {"from_status": exc.from_status, "to_status": exc.to_status, "allowed": exc.allowed}
        if isinstance(exc, GuardFailed):
            extensions |= {"from_status": exc.from_status, "to_status": exc.to_status, "unmet": exc.unmet}
        if isinstance(exc, StudentCountOutOfRange):
            extensions |= {"package_code": exc.package_code, "fitting_package": exc.fitting_package}
        title = exc.code.replace("_", " ").capitalize()
        return problem_response(
            status,
            title,
            exc.message,
            type_=TYPE_BASE + exc.code,
            instance=request.url.path,
            **extensions,  # type: ignore[arg-type]
        )
