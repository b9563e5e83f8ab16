"""Hostile values in every parameter and body field of every route: a 4xx `{detail, code}`.

A property over the whole OpenAPI document, beside `tests/test_schemas.py` (hand-picked routes
and the exact 422s): for each kind of hostile value -- text with a control character, with NUL,
with a lone surrogate, an integer beyond int64, a 100,000-character text, JSON nested 10,000
deep, a body over `MAX_JSON_BODY_SIZE` -- Hypothesis draws values, and each is put in turn into
every path, query and header parameter and every top-level body field (JSON and the upload's
multipart form) of every operation, the rest of the request being valid (the test's own rows
in the path, a valid drawn body around the field). Every answer must be a 4xx JSON
`{detail, code}`: never a 2xx (the value was taken), never a 5xx. The only exceptions are the
conditional headers of downloads (`Range`, `If-None-Match`, `If-Range`), which HTTP says a
server ignores when malformed: for those, no 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.app import AsyncApi
from tests.test_openapi_fuzz import BY_LABEL, drawn_cases, own_rows

# RFC 9110: a server ignores a malformed Range and unmatched validators, and sends the file.
IGNORED_WHEN_MALFORMED = frozenset({"Range", "If-None-Match", "If-Range"})
# Clients and servers cap a request line near 64 KiB: a huge text in a URL is this long.
URL_TEXT = 20_000
CONTROLS = [*map(chr, range(1, 9)), "\x0b", "\x0c", *map(chr, range(14, 32)), "\x7f", "\x85"]


def _around(bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`bad` somewhere in otherwise ordinary text."""
    plain = st.text(st.characters(codec="utf-8", categories=["L", "N"]), max_size=8)
    return st.builds(lambda head, mid, tail: head + mid + tail, plain, bad, plain)


KINDS: dict[str, st.SearchStrategy[Any]] = {
    "control": _around(st.sampled_from(CONTROLS)),
    "nul": _around(st.just("\x00")),
    "surrogate": _around(st.sampled_from(["\ud800", "\udfff", "\ud83d", "\udc00\ud800"])),
    "beyond_int64": st.one_of(
        st.integers(min_value=2**63, max_value=2**200),
        st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    ),
    "huge_text": st.builds(lambda c: c * 100_000, st.sampled_from(["x", "é", "7"])),
    "nested": st.tuples(st.sampled_from("[{"), st.integers(5_000, 20_000)),
    "huge_body": st.integers(min_value=1_100_000, max_value=1_500_000),
}
# Per kind, so each runs in its own test; few values: the fast tier's budget.
VALUES_PER_KIND = 2
FUZZ = settings(
    max_examples=1,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Target:
    label: str
    location: str  # path, query, header, json, form
    name: str
    numeric: bool  # an integer (or may be one): a number beyond int64 is hostile to it


def _numeric(schema: dict[str, Any]) -> bool:
    """Whether the schema allows an integer (directly or in anyOf/oneOf)."""
    if schema.get("type") in {"integer", "number"}:
        return True
    return any(_numeric(option) for option in schema.get("anyOf", []) + schema.get("oneOf", []))


def _body_fields(
    operation: dict[str, Any], components: dict[str, Any]
) -> list[tuple[str, str, dict[str, Any]]]:
    content = operation.get("requestBody", {}).get("content", {})
    for media, location in (("application/json", "json"), ("multipart/form-data", "form")):
        if media in content:
            schema = content[media]["schema"]
            if "$ref" in schema:
                schema = components[schema["$ref"].rsplit("/", 1)[-1]]
            return [(location, name, field) for name, field in schema.get("properties", {}).items()]
    return []


def _targets() -> list[Target]:
    any_operation = next(iter(BY_LABEL.values()))
    document = any_operation.schema.raw_schema
    components = document["components"]["schemas"]
    targets: list[Target] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                numeric = _numeric(parameter.get("schema", {}))
                targets.append(Target(label, parameter["in"], parameter["name"], numeric))
            for location, name, schema in _body_fields(operation, components):
                if location == "form" and name == "file":
                    continue  # the file's bytes: any bytes are a file
                targets.append(Target(label, location, name, _numeric(schema)))
    return targets


TARGETS = _targets()


def _base_body(label: str) -> dict[str, Any]:
    """A valid body for the operation (a drawn valid case), so the field is the one fault."""
    for case in drawn_cases(label):
        if case.meta is not None and case.meta.generation.mode.is_positive:
            if isinstance(case.body, dict):
                return dict(case.body)
    return {}


def _json_content(body: dict[str, Any], field: str, kind: str, value: Any) -> bytes:
    if kind == "nested":
        opener, depth = value
        inner = "[" * depth + "]" * depth if opener == "[" else '{"k":' * depth + "1" + "}" * depth
        marker = "__nested__"
        text = json.dumps({**body, field: marker})
        return text.replace(f'"{marker}"', inner).encode()
    if kind == "huge_body":
        return json.dumps({**body, field: "x" * value}).encode()
    return json.dumps({**body, field: value}).encode()  # lone surrogates as \ud800 escapes


def _form_content(field: str, raw: bytes) -> tuple[bytes, str]:
    boundary = "hostileboundary7"
    parts = [
        (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n').encode()
        + raw
        + b"\r\n",
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="a.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + b"a,b\n1,2\n\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _request(
    target: Target, kind: str, value: Any, ids: dict[str, Any]
) -> tuple[str, str, dict[str, Any]] | None:
    """(method, url, httpx kwargs) with `value` in `target`; None when no client could send it."""
    method, template = target.label.split(" ", 1)
    operation = BY_LABEL[target.label]
    if target.location not in {"json", "form"} and kind in {"nested", "huge_body"}:
        return None  # a structure, only meaningful in a body
    if target.location == "form" and kind in {"nested", "huge_body"}:
        return None  # the upload's form has no JSON, and its size limit is MAX_FILE_SIZE
    if kind == "beyond_int64" and not target.numeric:
        return None  # as text, "9223372036854775808" is just text
    raw = str(value).encode("utf-8", errors="surrogatepass")
    if target.location in {"path", "query"}:
        raw = raw[:URL_TEXT]
    path = template
    for parameter in operation.path_parameters:
        if parameter.name == target.name:
            path = path.replace("{" + parameter.name + "}", quote(raw, safe=""))
        else:
            path = path.replace("{" + parameter.name + "}", str(ids[parameter.name]))
    kwargs: dict[str, Any] = {"headers": {}}
    if target.location == "query":
        path += f"?{quote(target.name)}={quote(raw, safe='')}"
    elif target.location == "header":
        if any(c in raw for c in b"\r\n\x00"):
            return None  # cannot be one header on the wire
        kwargs["headers"][target.name] = raw
    if template.startswith("/files/tus") and target.name != "Tus-Resumable":
        kwargs["headers"]["Tus-Resumable"] = "1.0.0"
    if target.location == "json":
        body = _base_body(target.label)
        kwargs["content"] = _json_content(body, target.name, kind, value)
        kwargs["headers"]["Content-Type"] = "application/json"
    elif target.location == "form":
        kwargs["content"], kwargs["headers"]["Content-Type"] = _form_content(target.name, raw)
    return method, path, kwargs


def _wrong(target: Target, response: httpx.Response) -> str | None:
    status = response.status_code
    if status >= 500 or (status < 400 and target.name not in IGNORED_WHEN_MALFORMED):
        return f"{status} {response.text[:200]}"
    if status >= 400 and response.request.method != "HEAD":
        try:
            body = response.json()
        except ValueError:
            return f"{status} not JSON: {response.text[:200]}"
        if not isinstance(body, dict) or not {"detail", "code"} <= body.keys():
            return f"{status} without detail/code: {response.text[:200]}"
    return None


async def _send_everywhere(admin: AsyncApi, kind: str, values: list[Any]) -> list[str]:
    ids, _ = await own_rows(admin)
    failures: list[str] = []
    for value in values:
        for target in TARGETS:
            request = _request(target, kind, value, ids)
            if request is None:
                continue
            method, url, kwargs = request
            kwargs["headers"]["Authorization"] = f"Bearer {admin.token}"
            response = await admin.client.request(method, url, **kwargs)
            problem = _wrong(target, response)
            if problem:
                where = f"{target.location} {target.name} of {target.label}"
                failures.append(f"{kind} in {where}: {problem}")
    return failures


@pytest.mark.parametrize("kind", list(KINDS))
async def test_every_field_of_every_route_refuses_hostile_values(
    kind: str, admin_client: AsyncApi
) -> None:
    @FUZZ
    @given(values=st.lists(KINDS[kind], min_size=VALUES_PER_KIND, max_size=VALUES_PER_KIND))
    def draw(values: list[Any]) -> None:
        drawn.extend(values)

    drawn: list[Any] = []
    draw()
    failures = await _send_everywhere(admin_client, kind, drawn)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:15])


def test_every_route_has_targets() -> None:
    assert len({target.label for target in TARGETS}) >= 35
    assert len(TARGETS) >= 120
