"""Fuzz every operation of the OpenAPI schema: nothing a client sends ends in a 5xx, and every
4xx is a JSON `{detail, code}`.

Schemathesis draws valid (positive) and invalid (negative) requests for each operation; they are
sent as an admin through the in-process app, inside the test's rolled-back transaction. The
cases are drawn first and sent afterwards because the app runs on the test's event loop, where
a Hypothesis test body cannot await. The upload (multipart, streamed; its own tests) and the
health probes (they report on the servers, not on the request) are left out. A few read routes
are also checked, as the admin and as a customer, for answering only documented statuses with
bodies that match the documented schemas.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from filestore.main import create_app
from tests.fixtures.app import AsyncApi, fast_settings

# Valid requests reach the rules; invalid ones the parsing. Enough to find a 500 in each
# operation's path while the whole module stays within seconds on a busy machine.
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 3}
SKIPPED = frozenset({"POST /files/upload", "GET /health", "GET /health/live", "GET /health/ready"})


Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]


def _operations() -> list[Operation]:
    settings_ = fast_settings("postgresql://unused/unused", Path(tempfile.gettempdir()))
    schema = schemathesis.openapi.from_dict(create_app(settings_).openapi())
    operations: list[Operation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the app's own schema must load whole
        if result.ok().label not in SKIPPED:
            operations.append(result.ok())
    return operations


OPERATIONS = _operations()


def draw_cases(operation: Operation, modes: dict[GenerationMode, int] = EXAMPLES) -> list[AnyCase]:
    """Valid and invalid requests for `operation` (so many of each mode), drawn by Hypothesis."""
    cases: list[AnyCase] = []
    for mode, examples in modes.items():

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


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
async def test_no_server_error_and_every_4xx_is_a_json_error(
    operation: Operation, admin_client: AsyncApi
) -> None:
    client = admin_client.client
    failures: list[str] = []
    for case in draw_cases(operation):
        prepared = as_request(case, str(client.base_url))
        if prepared is None:
            continue
        headers = {k: v for k, v in prepared.headers.items() if k.lower() != "connection"}
        headers["Authorization"] = f"Bearer {admin_client.token}"
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        try:
            response = await client.request(
                str(prepared.method), str(prepared.url), headers=headers, content=body
            )
        except Exception as exc:  # the app raised: what a real server answers with a 500
            pytest.fail(f"{case.as_curl_command()}\nraised {exc!r}")
        problem = _problem(response, head=prepared.method == "HEAD")
        if problem:
            failures.append(f"{case.as_curl_command()}\n  -> {problem}")
    assert not failures, "\n".join(failures[:5])


def _problem(response: httpx.Response, *, head: bool) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"{status} {response.text[:300]}"
    if 400 <= status < 500 and not head:
        try:
            body = response.json()
        except ValueError:
            return f"{status} not JSON: {response.text[:300]}"
        if not isinstance(body, dict) or not {"detail", "code"} <= body.keys():
            return f"{status} without detail/code: {response.text[:300]}"
    return None


# Response conformance (issue 13, section 4): for a few read routes, as the admin and as a
# customer, every answer's status is documented and its body matches the documented schema.
# Drawn ids mostly miss (404) or are forbidden to the customer (403); one case per route uses
# real ids, so a 200 body is checked too. Few examples: the fast tier's budget.
CONFORMANCE_ROUTES = {
    "GET /auth/me": {},
    "GET /customers/{customer_id}": {"customer_id": "customer"},
    "GET /files/{file_id}": {"file_id": "file"},
    "GET /files/customer/{customer_id}": {"customer_id": "customer"},
    "GET /files/ticket/{ticket_id}": {"ticket_id": "ticket"},
    "GET /tickets/{ticket_id}": {"ticket_id": "ticket"},
}
CONFORMANCE_EXAMPLES = 3


def conformance_checks() -> list[Any]:
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    return [status_code_conformance, response_schema_conformance]


@pytest.mark.parametrize("role", ["admin", "customer"])
async def test_read_routes_answer_as_documented(role: str, admin_client: AsyncApi) -> None:
    customer = await admin_client.new_customer()
    ticket = await admin_client.new_ticket(customer["id"])
    upload = await admin_client.upload(b"a,b\n1,2\n", customer_id=customer["id"])
    assert upload.status_code == 201, upload.text
    ids = {"customer": customer["id"], "ticket": ticket["id"], "file": upload.json()["id"]}
    api = admin_client
    if role == "customer":
        api = await admin_client.user_api("customer", customer["id"])
    by_label = {operation.label: operation for operation in OPERATIONS}
    failures: list[str] = []
    for label, parameters in CONFORMANCE_ROUTES.items():
        operation = by_label[label]
        real = operation.Case(path_parameters={k: ids[v] for k, v in parameters.items()})
        drawn = draw_cases(
            operation, {GenerationMode.POSITIVE: CONFORMANCE_EXAMPLES, GenerationMode.NEGATIVE: 2}
        )
        for case in [real, *drawn]:
            prepared = as_request(case, str(api.client.base_url))
            if prepared is None:
                continue
            headers = {"Authorization": f"Bearer {api.token}"}
            response = await api.client.request(
                str(prepared.method), str(prepared.url), headers=headers
            )
            try:
                case.validate_response(response, checks=conformance_checks())
            except Exception as exc:  # schemathesis' FailureGroup: the list of what is wrong
                failures.append(f"{role} {case.as_curl_command()}\n  -> {exc}")
    assert not failures, "\n".join(failures[:5])
