"""RFC 9457 problem details for every error a service returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://errors.oneclass.example/"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ or TYPE_BASE + title.lower().replace(" ", "-")
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_ or TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            type_=exc.type,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(
                400, "Malformed JSON", "The request body is not valid JSON.", instance=request.url.path
            )
        return problem_response(
            422,
            "Validation failed",
            "The request does not match the expected schema.",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            413: "Payload too large",
        }.get(exc.status_code, "HTTP error")
        return problem_response(
            exc.status_code,
            title,
            str(exc.detail) if exc.detail else None,
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client hung up while sending its body (a load generator stopping, a provider timing out):
        # nothing was written and nobody reads this answer; not an error of ours to log with a traceback.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return problem_response(400, "Client disconnected", "The request body did not arrive in full.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):
            log.warning("dependency unavailable on %s: %s", request.url.path, exc)
            return problem_response(
                503,
                "Service unavailable",
                "A dependency (database or broker) is unreachable; nothing was written. Retry shortly.",
                instance=request.url.path,
                headers={"Retry-After": "2"},
            )
        if is_unstorable_text(exc):
            return problem_response(
                422,
                "Validation failed",
                "The request contains characters that cannot be stored (such as NUL); nothing was written.",
                instance=request.url.path,
            )
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(500, "Internal error", "An unexpected error occurred.", instance=request.url.path)


# SQLSTATEs that only the characters of a client's value cause: NUL in text, a \u0000 escape in jsonb
# (PostgreSQL stores neither). The statement failed, so its transaction wrote nothing.
_UNSTORABLE_TEXT = {"22021", "22P05"}


def is_unstorable_text(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlstate", None) in _UNSTORABLE_TEXT:
            return True
        current = current.__cause__ or current.__context__
    return False


def is_unavailable(exc: BaseException) -> bool:
    """A connection to the database (or another dependency) failed, as opposed to a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, TimeoutError, DBAPIError)) and _is_connection_error(current):
            return True
        if type(current).__name__ in _UNAVAILABLE_NAMES:
            return True
        current = current.__cause__ or current.__context__
    return False


_UNAVAILABLE_NAMES = {
    "ConnectionDoesNotExistError",
    "CannotConnectNowError",
    "ConnectionFailureError",
    "InterfaceError",
    "TooManyConnectionsError",
    "AdminShutdownError",
    "ConnectionRefusedError",
    "AMQPConnectionError",
}


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or type(exc.orig).__name__ in _UNAVAILABLE_NAMES
    return True


class BodySizeLimit:
    """Refuses bodies above a limit with 413 before the application reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, "Payload too large", f"The request body exceeds {self.max_bytes} bytes.")
        await response(scope, receive, send)


class _TooLarge(HTTPException):
    """An HTTPException, so FastAPI's body reader passes it on (it turns any other error into a 400) and the
    app's handler answers 413; a body read outside FastAPI's handlers reaches the middleware's own catch."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {max_bytes} bytes.")
