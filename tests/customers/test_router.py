"""`/customers` on a live server: who may create, e-mail rules, lookup and isolation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.fixtures.live import Api, LiveServer


@pytest.fixture
def admin(s3_server: LiveServer) -> Api:
    return s3_server.admin()


def unique_email(name: str = "cust") -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.com"


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "code"}
    if code is not None:
        assert body["code"] == code
    return body


class TestCreate:
    def test_admin_creates_with_the_seeds_csv_fields(self, admin: Api) -> None:
        body = {
            "full_name": "John Doe",
            "email": unique_email("john"),
            "phone": "1234567890",
            "address": "123 Main St",
            "city": "Anytown",
            "state": "CA",
            "postal_code": "12345",
            "country": "USA",
        }
        response = admin.post("/customers", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        assert {k: created[k] for k in body} == body
        assert created["id"] >= 1
        assert created["created_at"]

    def test_staff_may_create(self, admin: Api) -> None:
        staff = admin.user_api("staff")
        response = staff.post("/customers", json={"full_name": "By Staff", "email": unique_email()})
        assert response.status_code == 201, response.text

    def test_customer_user_may_not_create(self, admin: Api) -> None:
        customer = admin.user_api("customer", admin.new_customer()["id"])
        response = customer.post(
            "/customers", json={"full_name": "Self Made", "email": unique_email()}
        )
        assert_error(response, 403, "forbidden_role")

    def test_without_token_is_401(self, s3_server: LiveServer) -> None:
        response = s3_server.api().post(
            "/customers", json={"full_name": "X", "email": unique_email()}
        )
        assert_error(response, 401)

    def test_duplicate_email_ignoring_case_is_409(self, admin: Api) -> None:
        email = unique_email("Dup")
        admin.new_customer(email=email)
        for again in (email, email.upper(), email.lower()):
            response = admin.post("/customers", json={"full_name": "Again", "email": again})
            assert_error(response, 409, "customer_exists")

    @pytest.mark.parametrize(
        "email", ["not-an-email", "a@", "@example.com", "two@@example.com", ""]
    )
    def test_invalid_email_is_422(self, admin: Api, email: str) -> None:
        response = admin.post("/customers", json={"full_name": "Bad Mail", "email": email})
        assert_error(response, 422, "validation_error")

    def test_missing_full_name_is_422(self, admin: Api) -> None:
        assert_error(
            admin.post("/customers", json={"email": unique_email()}), 422, "validation_error"
        )

    @pytest.mark.parametrize(
        "extra",
        [{"id": 1}, {"created_at": "2024-01-01T00:00:00Z"}, {"owner": 1}, {"is_active": True}],
    )
    def test_unknown_or_server_owned_fields_are_refused(
        self, admin: Api, extra: dict[str, Any]
    ) -> None:
        email = unique_email()
        response = admin.post("/customers", json={"full_name": "Extra", "email": email, **extra})
        assert_error(response, 422, "validation_error")
        assert admin.get("/customers", params={"email": email}).json() == []

    def test_malformed_json_is_422_not_500(self, admin: Api) -> None:
        response = admin.post(
            "/customers",
            content=b'{"full_name": "X", ',
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 422)


class TestList:
    def test_email_filter_ignores_case(self, admin: Api) -> None:
        email = unique_email("Filter")
        created = admin.new_customer(email=email)
        for query in (email, email.upper(), f"  {email.lower()}  "):
            found = admin.get("/customers", params={"email": query})
            assert found.status_code == 200
            assert [c["id"] for c in found.json()] == [created["id"]]

    def test_email_filter_with_no_match_is_empty(self, admin: Api) -> None:
        assert admin.get("/customers", params={"email": unique_email("nobody")}).json() == []

    def test_staff_sees_every_customer(self, admin: Api) -> None:
        first, second = admin.new_customer(), admin.new_customer()
        ids = {
            c["id"] for c in admin.user_api("staff").get("/customers", params={"limit": 500}).json()
        }
        assert {first["id"], second["id"]} <= ids

    def test_customer_user_sees_only_itself(self, admin: Api) -> None:
        mine, other = admin.new_customer(), admin.new_customer()
        customer = admin.user_api("customer", mine["id"])
        assert [c["id"] for c in customer.get("/customers").json()] == [mine["id"]]
        assert customer.get("/customers", params={"email": other["email"]}).json() == []

    def test_limit_is_bounded(self, admin: Api) -> None:
        assert_error(admin.get("/customers", params={"limit": 0}), 422)
        assert_error(admin.get("/customers", params={"limit": 501}), 422)


class TestGet:
    def test_by_id(self, admin: Api) -> None:
        created = admin.new_customer(full_name="Lookup Me")
        response = admin.get(f"/customers/{created['id']}")
        assert response.status_code == 200
        assert response.json() == created

    def test_missing_is_404(self, admin: Api) -> None:
        assert_error(admin.get("/customers/987654321"), 404, "customer_not_found")

    @pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "99999999999999999999"])
    def test_invalid_id_is_422(self, admin: Api, bad_id: str) -> None:
        assert_error(admin.get(f"/customers/{bad_id}"), 422)

    def test_customer_user_gets_404_for_another_customer(self, admin: Api) -> None:
        mine, other = admin.new_customer(), admin.new_customer()
        customer = admin.user_api("customer", mine["id"])
        assert customer.get(f"/customers/{mine['id']}").status_code == 200
        assert_error(customer.get(f"/customers/{other['id']}"), 404, "customer_not_found")
