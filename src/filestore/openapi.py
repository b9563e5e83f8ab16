"""The OpenAPI document, completed with what the transport layer answers before a route runs.

Routes list their own errors in `responses=`; a few answers come from below them and apply to a
whole class of operations, so they are written in here once rather than on every route (a new
route cannot forget them):

an operation with a request body gets 400 when the body cannot be parsed (malformed JSON, a
broken form) and 413 `body_too_large` over `MAX_JSON_BODY_SIZE` (`BodyLimitMiddleware`; the
upload routes, exempt from that limit, list their own 413); an operation with path or query
parameters gets 400 `invalid_url` when their percent-escapes are not UTF-8
(`Utf8UrlMiddleware`).

Schemathesis checks every answer of every operation against this document
(`tests/test_openapi_conformance.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}

URL_ERROR = "A path or query whose percent-escapes are not UTF-8 (`invalid_url`)"
BODY_ERRORS = {
    "400": "The body could not be parsed (malformed JSON or form)",
    "413": "Body larger than MAX_JSON_BODY_SIZE (`body_too_large`)",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the transport layer's answers to every operation that can get them (in place)."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            if "requestBody" in operation:
                for status, description in BODY_ERRORS.items():
                    responses.setdefault(status, _error(description))
            if any(p["in"] in {"path", "query"} for p in operation.get("parameters", [])):
                responses.setdefault("400", _error(URL_ERROR))
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document from `/openapi.json` (and to `app.openapi()` callers)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
