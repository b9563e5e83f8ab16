"""`/tickets` on a live server: create, list (newest first, filters), get, isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.live import Api, LiveServer


@pytest.fixture
def admin(s3_server: LiveServer) -> Api:
    return s3_server.admin()


@pytest.fixture
def customer(admin: Api) -> dict[str, Any]:
    return admin.new_customer()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "code"}
    if code is not None:
        assert body["code"] == code
    return body


class TestCreate:
    def test_staff_opens_a_ticket_for_a_customer(
        self, admin: Api, customer: dict[str, Any]
    ) -> None:
        staff = admin.user_api("staff")
        response = staff.post(
            "/tickets", json={"customer_id": customer["id"], "subject": "No internet"}
        )
        assert response.status_code == 201, response.text
        ticket = response.json()
        assert ticket["customer_id"] == customer["id"]
        assert ticket["subject"] == "No internet"
        assert ticket["status"] == "open"
        assert ticket["id"] >= 1

    def test_with_a_status(self, admin: Api, customer: dict[str, Any]) -> None:
        response = admin.post(
            "/tickets", json={"customer_id": customer["id"], "subject": "Slow", "status": "pending"}
        )
        assert response.status_code == 201
        assert response.json()["status"] == "pending"

    def test_customer_user_opens_one_for_itself(self, admin: Api, customer: dict[str, Any]) -> None:
        me = admin.user_api("customer", customer["id"])
        response = me.post("/tickets", json={"subject": "Router blinks red"})
        assert response.status_code == 201, response.text
        assert response.json()["customer_id"] == customer["id"]

    def test_customer_user_cannot_open_one_for_another_customer(
        self, admin: Api, customer: dict[str, Any]
    ) -> None:
        me = admin.user_api("customer", customer["id"])
        other = admin.new_customer()
        response = me.post("/tickets", json={"customer_id": other["id"], "subject": "Not mine"})
        assert_error(response, 404, "customer_not_found")
        assert admin.get("/tickets", params={"customer_id": other["id"]}).json() == []

    def test_unknown_customer_is_404(self, admin: Api) -> None:
        response = admin.post("/tickets", json={"customer_id": 987654321, "subject": "Ghost"})
        assert_error(response, 404, "customer_not_found")

    def test_staff_must_name_the_customer(self, admin: Api) -> None:
        assert_error(admin.post("/tickets", json={"subject": "Whose?"}), 422, "customer_required")

    @pytest.mark.parametrize(
        "body",
        [
            {"subject": ""},
            {"subject": "x" * 256},
            {"subject": "Bad status", "status": "exploded"},
            {"subject": "Bad id", "customer_id": 0},
        ],
    )
    def test_invalid_fields_are_422(
        self, admin: Api, customer: dict[str, Any], body: dict[str, Any]
    ) -> None:
        assert_error(admin.post("/tickets", json={"customer_id": customer["id"], **body}), 422)

    @pytest.mark.parametrize(
        "extra",
        [{"id": 5}, {"created_at": "2020-01-01T00:00:00Z"}, {"owner_id": 1}, {"priority": "high"}],
    )
    def test_extra_fields_are_refused(
        self, admin: Api, customer: dict[str, Any], extra: dict[str, Any]
    ) -> None:
        response = admin.post(
            "/tickets", json={"customer_id": customer["id"], "subject": "X", **extra}
        )
        assert_error(response, 422, "validation_error")
        assert admin.get("/tickets", params={"customer_id": customer["id"]}).json() == []


class TestList:
    def test_newest_first(self, admin: Api, customer: dict[str, Any]) -> None:
        opened = [admin.new_ticket(customer["id"], f"Ticket {n}")["id"] for n in range(4)]
        listed = admin.get("/tickets", params={"customer_id": customer["id"]}).json()
        assert [t["id"] for t in listed] == list(reversed(opened))
        stamps = [t["created_at"] for t in listed]
        assert stamps == sorted(stamps, reverse=True)

    def test_filter_by_customer(self, admin: Api, customer: dict[str, Any]) -> None:
        other = admin.new_customer()
        mine = admin.new_ticket(customer["id"])
        admin.new_ticket(other["id"])
        listed = admin.get("/tickets", params={"customer_id": customer["id"]}).json()
        assert [t["id"] for t in listed] == [mine["id"]]

    def test_filter_by_status(self, admin: Api, customer: dict[str, Any]) -> None:
        admin.new_ticket(customer["id"], "Still open")
        pending = admin.post(
            "/tickets",
            json={"customer_id": customer["id"], "subject": "Waiting", "status": "pending"},
        ).json()
        listed = admin.get(
            "/tickets", params={"customer_id": customer["id"], "status": "pending"}
        ).json()
        assert [t["id"] for t in listed] == [pending["id"]]
        assert len(admin.get("/tickets", params={"customer_id": customer["id"]}).json()) == 2

    def test_unknown_status_filter_is_422(self, admin: Api) -> None:
        assert_error(admin.get("/tickets", params={"status": "bogus"}), 422)

    def test_customer_user_sees_only_its_tickets(
        self, admin: Api, customer: dict[str, Any]
    ) -> None:
        other = admin.new_customer()
        mine = admin.new_ticket(customer["id"])
        theirs = admin.new_ticket(other["id"])
        me = admin.user_api("customer", customer["id"])
        assert [t["id"] for t in me.get("/tickets").json()] == [mine["id"]]
        assert me.get("/tickets", params={"customer_id": other["id"]}).json() == []
        assert theirs["id"] not in {
            t["id"] for t in me.get("/tickets", params={"limit": 500}).json()
        }

    def test_limit_and_offset(self, admin: Api, customer: dict[str, Any]) -> None:
        opened = [admin.new_ticket(customer["id"], f"T{n}")["id"] for n in range(3)]
        page = admin.get(
            "/tickets", params={"customer_id": customer["id"], "limit": 1, "offset": 1}
        ).json()
        assert [t["id"] for t in page] == [opened[1]]


class TestGet:
    def test_by_id(self, admin: Api, customer: dict[str, Any]) -> None:
        ticket = admin.new_ticket(customer["id"], "Look me up")
        response = admin.get(f"/tickets/{ticket['id']}")
        assert response.status_code == 200
        assert response.json() == ticket

    def test_missing_is_404(self, admin: Api) -> None:
        assert_error(admin.get("/tickets/987654321"), 404, "ticket_not_found")

    def test_customer_user_gets_404_for_another_customers_ticket(
        self, admin: Api, customer: dict[str, Any]
    ) -> None:
        theirs = admin.new_ticket(admin.new_customer()["id"])
        me = admin.user_api("customer", customer["id"])
        assert_error(me.get(f"/tickets/{theirs['id']}"), 404, "ticket_not_found")
