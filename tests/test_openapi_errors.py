"""One error contract, visible in OpenAPI: every error a route lists is `{detail, code}`.

Pure: builds the app and reads its OpenAPI document, no server, no database.
"""

from __future__ import annotations

from typing import Any

import pytest

from filestore.main import create_app
from filestore.settings import Settings

# /health and /health/ready answer 503 with their report of what is down, not an error body.
HEALTH_REPORTS = {("/health", "503"), ("/health/ready", "503")}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings()).openapi()
    return schema


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
    ]


def body_model(response: dict[str, Any]) -> str:
    ref: str = response["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


class TestErrorContract:
    def test_every_error_response_is_the_error_body(self, openapi: dict[str, Any]) -> None:
        wrong = {}
        for path, method, operation in operations(openapi):
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) in HEALTH_REPORTS:
                    continue
                expected = "ValidationErrorBody" if status == "422" else "ErrorBody"
                try:
                    model = body_model(response)
                except KeyError:
                    model = "none"
                if model != expected:
                    wrong[f"{method.upper()} {path} {status}"] = model
        assert not wrong

    def test_every_route_lists_its_errors(self, openapi: dict[str, Any]) -> None:
        missing = [
            f"{method.upper()} {path}"
            for path, method, operation in operations(openapi)
            if "500" not in operation["responses"]
        ]
        assert not missing
        assert len(operations(openapi)) > 25

    def test_the_schemas_say_detail_and_code(self, openapi: dict[str, Any]) -> None:
        schemas = openapi["components"]["schemas"]
        assert schemas["ErrorBody"]["required"] == ["detail", "code"]
        assert schemas["ValidationErrorBody"]["required"] == ["detail", "code"]
        # FastAPI's own 422 model does not describe what this API sends.
        assert "HTTPValidationError" not in schemas

    def test_routes_needing_a_token_list_401(self, openapi: dict[str, Any]) -> None:
        for path in ("/files/{file_id}", "/customers", "/audit-events", "/files/jobs", "/users"):
            for operation in openapi["paths"][path].values():
                assert "401" in operation["responses"], path
