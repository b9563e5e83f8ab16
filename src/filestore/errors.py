"""Domain errors and the one place that turns every error into a JSON `{"detail", "code"}` body.

Services raise `FilestoreError` subclasses and know nothing of HTTP; `install_error_handlers`
maps them, FastAPI's validation errors, unreachable PostgreSQL / object storage, and anything
unexpected to JSON responses.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from obstore.exceptions import BaseError as ObstoreError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def _is_storage_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("obstore") or type(exc).__module__.startswith("minio")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that make every error a JSON body with a `code`."""

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

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database.unavailable", error=str(exc).splitlines()[0] if str(exc) else "")
        return _json(503, "Database is unavailable, try again shortly", "database_unavailable")

    async def _storage_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("storage.unavailable", error=str(exc)[:300], path=request.url.path)
        return _json(503, "Object storage is unavailable, try again shortly", "storage_unavailable")

    # Registered by class, not left to the catch-all below: Starlette re-raises whatever reaches
    # the catch-all after answering, and uvicorn then drops the client's keep-alive connection.
    from minio.error import MinioException

    for storage_error in (ObstoreError, MinioException, OSError):
        app.add_exception_handler(storage_error, _storage_down)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if _is_storage_error(exc) or isinstance(exc, OSError | TimeoutError):
            log.error("storage.unavailable", error=str(exc)[:300], path=request.url.path)
            return _json(
                503, "Object storage is unavailable, try again shortly", "storage_unavailable"
            )
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return _json(503, "Database is unavailable, try again shortly", "database_unavailable")
        log.exception("request.unhandled_error", path=request.url.path)
        return _json(500, "Internal server error", "internal_error")
