"""Fuzz every operation of the OpenAPI schema and hold every answer to that schema.

Schemathesis draws valid (positive) and invalid (negative) requests for each operation; they
are sent through the in-process app, inside the test's rolled-back transaction, as the admin,
as a staff member, as a customer and with no token. Every answer must pass schemathesis' response
checks (`CHECKS`: no 5xx, a documented status, a documented content type and headers, a body
that matches the documented schema, invalid data refused) and every 4xx must be a JSON
`{detail, code}`. Besides the drawn requests, each operation gets one with real ids in its path
(a customer, ticket, file, user, tus upload of the test's own), so 200 bodies are checked too.

The cases are drawn first (once per operation and process) and sent afterwards because the app
runs on the test's event loop, where a Hypothesis test body cannot await. Few examples: the fast
tier's budget. `TestTheChecksCanFail` shows the checks refuse an undocumented answer.
"""

from __future__ import annotations

import base64
import tempfile
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from filestore.main import create_app
from tests.fixtures.app import AsyncApi, fast_settings

# Valid requests reach the rules; invalid ones the parsing. Enough to find a 500 in each
# operation's path while the whole module stays within seconds on a busy machine.
EXAMPLES = {GenerationMode.POSITIVE: 5, GenerationMode.NEGATIVE: 3}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# The health probes' 503 is their documented report of what is down (the fast tier has no
# object store), not a server error; the other checks hold for them.
HEALTH = frozenset({"GET /health", "GET /health/ready"})
# What an invalid request may get: schemathesis' defaults, and tus' 412 for a Tus-Resumable
# header that is not 1.0.0 (the protocol's own answer).
REJECTIONS = ["400", "401", "403", "404", "406", "412", "413", "415", "422", "428"]

Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]


def _operations() -> list[Operation]:
    settings_ = fast_settings("postgresql://unused/unused", Path(tempfile.gettempdir()))
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
    )
    schema = schemathesis.openapi.from_dict(create_app(settings_).openapi(), config=config)
    operations: list[Operation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the app's own schema must load whole
        operations.append(result.ok())
    return operations


OPERATIONS = _operations()
BY_LABEL = {operation.label: operation for operation in OPERATIONS}


@cache
def drawn_cases(label: str) -> list[AnyCase]:
    """Valid and invalid requests for one operation, drawn by Hypothesis (once per process)."""
    operation = BY_LABEL[label]
    cases: list[AnyCase] = []
    for mode, examples in EXAMPLES.items():

        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode))
        def collect(case: AnyCase) -> None:
            cases.append(case)

        try:
            collect()
        except Unsatisfiable:  # nothing to get wrong: no parameters, no body
            continue
    return cases


def as_request(case: AnyCase, base_url: str) -> requests.PreparedRequest | None:
    """The exact request schemathesis would send; None when no HTTP client could send it."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    kwargs.pop("cookies", None)
    try:
        prepared = requests.Request(**kwargs).prepare()
        for value in prepared.headers.values():
            value.encode("latin-1")
    except (UnicodeError, ValueError, TypeError):
        return None
    return prepared


def with_real_ids(operation: Operation, ids: dict[str, Any]) -> AnyCase | None:
    """A valid request for `operation` aimed at the test's own rows (None: no ids in its path)."""
    names = {parameter.name for parameter in operation.path_parameters}
    if not names or not names <= ids.keys():
        return None
    valid = [
        case
        for case in drawn_cases(operation.label)
        if case.meta is not None and case.meta.generation.mode.is_positive
    ]
    base = valid[0] if valid else operation.Case()
    return operation.Case(
        path_parameters={name: ids[name] for name in names},
        query=base.query,
        headers=base.headers,
        body=base.body,
        media_type=base.media_type,
    )


def _padded(value: Any) -> bool:
    """Whether any text in a request body has whitespace the server trims."""
    if isinstance(value, str):
        return value != value.strip()
    if isinstance(value, dict):
        return any(_padded(key) or _padded(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_padded(item) for item in value)
    return False


def _vanishes_in_form(case: AnyCase) -> bool:
    """Whether a multipart body has a field drawn as an empty list (sent as no field)."""
    body = case.body
    if not (case.media_type or "").startswith("multipart/") or not isinstance(body, dict):
        return False
    return any(value == [] for value in body.values())


def not_a_json_error(response: httpx.Response) -> str | None:
    status = response.status_code
    if 400 <= status < 500 and response.request.method != "HEAD":
        try:
            body = response.json()
        except ValueError:
            return f"{status} not JSON: {response.text[:300]}"
        if not isinstance(body, dict) or not {"detail", "code"} <= body.keys():
            return f"{status} without detail/code: {response.text[:300]}"
    return None


async def send(api: AsyncApi, case: AnyCase, token: str | None) -> tuple[str, str] | None:
    """Send one case; (what was sent, what is wrong) when its answer breaks a check."""
    client = api.client
    prepared = as_request(case, str(client.base_url))
    if prepared is None:
        return None
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "connection"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    try:
        response = await client.request(
            str(prepared.method), str(prepared.url), headers=headers, content=body
        )
    except Exception as exc:  # the app raised: what a real server answers with a 500
        return case.as_curl_command(), f"raised {exc!r}"
    checks = CHECKS
    if case.operation.label in HEALTH:
        checks = [check for check in CHECKS if check is not not_a_server_error]
    if _padded(case.body) or _vanishes_in_form(case):
        # Request bodies are trimmed before their rules (`StrictInput`): a text schemathesis
        # made one character too long with a leading space or form feed is valid once trimmed.
        # And in a multipart form an empty list is no field at all: nothing invalid is sent.
        checks = [check for check in checks if check is not negative_data_rejection]
    try:
        case.validate_response(response, checks=checks)
    except FailureGroup as exc:
        return case.as_curl_command(), "; ".join(f"{f.title}: {f.message}" for f in exc.exceptions)
    problem = not_a_json_error(response)
    return (case.as_curl_command(), problem) if problem else None


async def own_rows(admin: AsyncApi) -> tuple[dict[str, Any], dict[str, AsyncApi | None]]:
    """Real ids for the path parameters, and a client per role."""
    customer = await admin.new_customer()
    ticket = await admin.new_ticket(customer["id"])
    upload = await admin.upload(b"a,b\n1,2\n", customer_id=customer["id"])
    assert upload.status_code == 201, upload.text
    user, password = await admin.new_user("customer", customer["id"])
    tus = await admin.post(
        "/files/tus",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "8",
            "Upload-Metadata": "filename " + base64.b64encode(b"t.csv").decode(),
        },
    )
    assert tus.status_code == 201, tus.text
    ids = {
        "customer_id": customer["id"],
        "ticket_id": ticket["id"],
        "file_id": upload.json()["id"],
        "user_id": user["id"],
        "upload_id": tus.headers["Location"].rsplit("/", 1)[-1],
    }
    roles: dict[str, AsyncApi | None] = {
        "admin": admin,
        "staff": await admin.user_api("staff"),
        "customer": await admin.login(user["username"], password),
        "anonymous": None,
    }
    return ids, roles


@pytest.mark.parametrize("role", ["admin", "staff", "customer", "anonymous"])
async def test_every_answer_is_as_documented(role: str, admin_client: AsyncApi) -> None:
    ids, roles = await own_rows(admin_client)
    api = roles[role]
    token = api.token if api is not None else None
    failures: list[str] = []
    for operation in OPERATIONS:
        real = with_real_ids(operation, ids)
        for case in [*drawn_cases(operation.label), *([real] if real else [])]:
            failure = await send(admin_client, case, token)
            if failure:
                failures.append(f"{role} {operation.label}: {failure[0]}\n  -> {failure[1]}")
    assert not failures, "\n".join(failures[:10])


class TestTheChecksCanFail:
    """The conformance checks are not vacuous: undocumented answers fail them."""

    def _answer(self, status: int, body: Any, content_type: str = "application/json") -> Any:
        request = httpx.Request("GET", "http://fast.test/files/1")
        content = body if isinstance(body, bytes) else httpx.Response(200, json=body).content
        headers = {"content-type": content_type}
        response = httpx.Response(status, content=content, headers=headers, request=request)
        response.elapsed = timedelta(0)  # as if it had been received
        return response

    def _failures(self, response: httpx.Response) -> list[str]:
        case = BY_LABEL["GET /files/{file_id}"].Case(path_parameters={"file_id": 1})
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:
            return [failure.title for failure in exc.exceptions]
        return []

    def test_a_made_up_status_fails(self) -> None:
        failures = self._failures(self._answer(418, {"detail": "teapot", "code": "teapot"}))
        assert failures == ["Undocumented status code"]

    def test_a_body_off_the_schema_fails(self) -> None:
        # `detail` not a string, `code` missing: each is a violation
        failures = self._failures(self._answer(404, {"detail": ["x"]}))
        assert failures == ["Response violates schema"] * 2

    def test_an_undocumented_content_type_fails(self) -> None:
        failures = self._failures(self._answer(404, b"<p>no</p>", "text/html"))
        assert "Undocumented Content-Type" in failures

    def test_a_documented_answer_passes(self) -> None:
        assert self._failures(self._answer(404, {"detail": "no", "code": "not_found"})) == []
