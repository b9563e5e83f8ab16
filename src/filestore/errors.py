"""Domain errors and the one place that turns every error into a JSON `{"detail", "code"}` body.

Services raise `FilestoreError` subclasses and know nothing of HTTP; `install_error_handlers`
maps them, FastAPI's validation errors, unreachable PostgreSQL / object storage, and anything
unexpected to JSON responses.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

log = structlog.get_logger(__name__)


class FilestoreError(Exception):
    """Base of every error a client may see; `code` is a stable machine-readable name."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self, message: Any, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers


class BadRequest(FilestoreError):
    status_code = 400
    code = "bad_request"


class Unauthorized(FilestoreError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, message: str = "Not authenticated", *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(FilestoreError):
    status_code = 403
    code = "forbidden"


class RequestTimeout(FilestoreError):
    """The client stopped sending, or sends too slowly; the connection is closed after it."""

    status_code = 408
    code = "request_timeout"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Connection": "close"})


class NotFound(FilestoreError):
    status_code = 404
    code = "not_found"


class Conflict(FilestoreError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(FilestoreError):
    status_code = 413
    code = "file_too_large"


class UnsupportedMediaType(FilestoreError):
    status_code = 415
    code = "unsupported_file_type"


class RangeNotSatisfiable(FilestoreError):
    status_code = 416
    code = "range_not_satisfiable"


class Unprocessable(FilestoreError):
    status_code = 422
    code = "validation_error"


class TooManyRequests(FilestoreError):
    """429 with `Retry-After` (whole seconds)."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(FilestoreError):
    status_code = 503
    code = "service_unavailable"


def error_body(detail: Any, code: str) -> dict[str, Any]:
    return {"detail": detail, "code": code}


async def send_error_and_close(
    send: Send, status: int, detail: str, code: str, *extra: tuple[bytes, bytes]
) -> None:
    """Answer from a pure ASGI middleware with the JSON error body and `Connection: close`."""
    body = json.dumps(error_body(detail, code)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json(
    status: int, detail: Any, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(detail, code), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "file_too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that make every expected error a JSON body with a `code`.

    Only outages become 503: `ServiceUnavailable` and its kin (the object store's transport
    errors arrive as `StorageUnavailable`), and a database that cannot be reached. Anything
    else that escapes a route is a bug or a misconfiguration: `server_errors` logs it with
    its traceback and answers 500.
    """

    @app.exception_handler(FilestoreError)
    async def _domain(_: Request, exc: FilestoreError) -> JSONResponse:
        return _json(exc.status_code, exc.message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return _json(422, errors, "validation_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _json(exc.status_code, exc.detail, code, dict(exc.headers or {}))

    async def _db_down(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "database.unavailable",
            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            path=request.url.path,
        )
        return _json(503, "Database is unavailable, try again shortly", "database_unavailable")

    for outage in (OperationalError, PoolTimeoutError, psycopg.OperationalError):
        app.add_exception_handler(outage, _db_down)

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _db_down(request, exc)
        raise exc  # a bug: `server_errors.UnhandledErrorMiddleware` logs it and answers 500


class ErrorBody(BaseModel):
    """Every error answer: a human-readable `detail` and a stable machine-readable `code`."""

    detail: str
    code: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str | None = None


class ValidationErrorBody(BaseModel):
    """A 422: the fields FastAPI refused (a list), or a rule a service refused (a sentence)."""

    detail: list[FieldError] | str
    code: str


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated: token missing, invalid or expired",
    403: "Your role may not do this",
    404: "Not found (or not yours to see)",
    409: "Conflict with the current state",
    413: "Too large",
    415: "Unsupported file type",
    416: "Range not satisfiable",
    422: "Invalid input (`code` says which rule)",
    429: "Too many requests; see `Retry-After`",
    500: "Internal error (logged with its traceback)",
    503: "A dependency (database, object storage) is unavailable; try again shortly",
}

# What any route may answer: a bug, or an outage of the database or the store.
ALWAYS = (500, 503)


def error_responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status with the `{detail, code}` model, and a
    description (the default one, or the one given as `(status, description)`)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, _DESCRIPTIONS[entry])
        model = ValidationErrorBody if status == 422 else ErrorBody
        responses[status] = {"model": model, "description": description}
    return responses
