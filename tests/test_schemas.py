"""Input PostgreSQL cannot take (NUL in text, lone surrogates, numbers beyond BIGINT) is a 422
JSON answer on every route, never a 500; hand-picked routes are also fuzzed with Hypothesis."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.app import AsyncApi

NUL = "bad\x00value"
BEYOND_INT64 = [2**63, 10**30, -(2**63) - 1]
LIST_ROUTES = ["/customers", "/tickets", "/users", "/audit-events", "/files/jobs"]
ID_ROUTES = [
    "/customers/{}",
    "/tickets/{}",
    "/users/{}",
    "/files/{}",
    "/files/download/{}",
    "/files/customer/{}",
    "/files/ticket/{}",
]


def password() -> str:
    return "Pw-" + "k7" * 8


async def assert_all_422(api: AsyncApi, requests: list[tuple[str, str, dict[str, Any]]]) -> None:
    for method, path, kwargs in requests:
        response = await api.request(method, path, **kwargs)
        assert response.status_code == 422, f"{method} {path} {kwargs}: {response.text}"
        assert response.json()["code"] == "validation_error"


class TestNul:
    async def test_in_query_filters(self, admin_client: AsyncApi) -> None:
        await assert_all_422(
            admin_client,
            [
                ("GET", "/customers", {"params": {"email": NUL}}),
                ("GET", "/users", {"params": {"email": NUL}}),
                ("GET", "/audit-events", {"params": {"action": NUL}}),
            ],
        )

    async def test_in_json_bodies(self, admin_client: AsyncApi) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        staff = {"username": "u-nul", "password": password(), "role": "staff"}
        bodies = [
            ("POST", "/customers", {"full_name": NUL, "email": "nul@example.com"}),
            ("POST", "/customers", {"full_name": "A", "email": "n2@example.com", "city": NUL}),
            ("POST", "/users", {**staff, "username": NUL}),
            ("POST", "/users", {**staff, "full_name": NUL}),
            ("POST", "/tickets", {"customer_id": customer_id, "subject": NUL}),
            ("POST", "/auth/refresh", {"refresh_token": NUL}),
            ("POST", "/auth/logout", {"refresh_token": NUL}),
            ("POST", "/auth/reset-password", {"token": NUL, "new_password": password()}),
            ("POST", "/auth/setup", {"username": NUL, "password": password()}),
            ("POST", "/auth/change-password", {"current_password": NUL, "new_password": "x"}),
            ("POST", "/files/csv-import", {"file_upload_id": 1, "mapping_config": {NUL: "email"}}),
            ("POST", "/files/csv-import", {"file_upload_id": 1, "mapping_config": {"e": NUL}}),
        ]
        await assert_all_422(
            admin_client, [(method, path, {"json": body}) for method, path, body in bodies]
        )

    async def test_in_a_login_as_json_or_form(self, app_client: AsyncApi) -> None:
        credentials = {"username": NUL, "password": "whatever"}
        await assert_all_422(
            app_client,
            [
                ("POST", "/auth/login", {"json": credentials}),
                ("POST", "/auth/login", {"data": credentials}),
            ],
        )

    async def test_lone_surrogates_in_a_body(self, admin_client: AsyncApi) -> None:
        raw = '{"full_name": "\\ud800", "email": "surrogate@example.com"}'
        headers = {"Content-Type": "application/json"}
        await assert_all_422(
            admin_client, [("POST", "/customers", {"content": raw, "headers": headers})]
        )


class TestBeyondInt64:
    async def test_offset_and_limit_of_every_listing(self, admin_client: AsyncApi) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        paths = [*LIST_ROUTES, f"/files/customer/{customer_id}"]
        await assert_all_422(
            admin_client,
            [
                ("GET", path, {"params": {param: number}})
                for path in paths
                for param in ("offset", "limit")
                for number in BEYOND_INT64
            ],
        )

    async def test_path_ids(self, admin_client: AsyncApi) -> None:
        await assert_all_422(
            admin_client,
            [("GET", route.format(number), {}) for route in ID_ROUTES for number in BEYOND_INT64],
        )

    async def test_ids_in_filters_and_bodies(self, admin_client: AsyncApi) -> None:
        user = {"username": "big-id", "password": password(), "role": "customer"}
        requests: list[tuple[str, str, dict[str, Any]]] = []
        for number in BEYOND_INT64:
            requests += [
                ("POST", "/users", {"json": {**user, "customer_id": number}}),
                ("PATCH", "/users/1", {"json": {"customer_id": number}}),
                ("POST", "/tickets", {"json": {"customer_id": number, "subject": "x"}}),
                ("POST", "/files/csv-import", {"json": {"file_upload_id": number}}),
                ("GET", "/tickets", {"params": {"customer_id": number}}),
                ("GET", "/users", {"params": {"customer_id": number}}),
                ("GET", "/audit-events", {"params": {"actor_id": number}}),
                ("GET", "/audit-events", {"params": {"target_user_id": number}}),
            ]
        await assert_all_422(admin_client, requests)


# -- Hypothesis: hostile values on a few routes ---------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda head, bad, tail: head + bad + tail,
        st.text(max_size=10),
        st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\x00\x00"]),
        st.text(max_size=10),
    ),
)
hostile_int = st.one_of(
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=2),
    st.integers(),
)
FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def json_body(value: object) -> dict[str, Any]:
    """A JSON body as raw bytes (lone surrogates as `\\ud800` escapes, which clients can send)."""
    return {"content": json.dumps(value), "headers": {"Content-Type": "application/json"}}


def assert_client_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert {"detail", "code"} <= body.keys()


@FUZZ
@given(name=hostile_text, city=hostile_text, email_filter=hostile_text)
async def test_customers_take_any_text(
    admin_client: AsyncApi, name: str, city: str, email_filter: str
) -> None:
    created = await admin_client.post(
        "/customers",
        **json_body({"full_name": name, "email": "fuzz@example.com", "city": city}),
    )
    assert_client_error(created)
    query = "email=" + quote(email_filter, errors="surrogatepass")
    assert_client_error(await admin_client.get(f"/customers?{query}"))


@FUZZ
@given(subject=hostile_text, customer_id=hostile_int, offset=hostile_int)
async def test_tickets_take_any_text_and_number(
    admin_client: AsyncApi, subject: str, customer_id: int, offset: int
) -> None:
    created = await admin_client.post(
        "/tickets", **json_body({"customer_id": customer_id, "subject": subject})
    )
    assert_client_error(created)
    listed = await admin_client.get(
        "/tickets", params={"customer_id": customer_id, "offset": offset}
    )
    assert_client_error(listed)


@FUZZ
@given(username=hostile_text, user_id=hostile_int, customer_id=hostile_int)
async def test_users_and_logins_take_any_text_and_number(
    admin_client: AsyncApi, username: str, user_id: int, customer_id: int
) -> None:
    login = await admin_client.client.post(
        "/auth/login", **json_body({"username": username, "password": "not-it"})
    )
    assert_client_error(login)
    body = {"username": username, "password": password(), "customer_id": customer_id}
    assert_client_error(await admin_client.post("/users", **json_body(body)))
    assert_client_error(await admin_client.get(f"/users/{user_id}"))
    assert_client_error(await admin_client.get("/users", params={"offset": user_id}))
