"""First-run setup, password change, the password rules on every path that sets one, user
administration (`GET/PATCH /users`) and customers created with a login, on a live server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.auth.conftest import accounts_env
from tests.auth.support import (
    STRONG,
    assert_error,
    login,
    me,
    new_user,
    pair,
    post,
    sql,
    strong_password,
    tag,
)
from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import Api, LiveServer


@pytest.fixture
def admin(plain_server: LiveServer) -> Api:
    return plain_server.admin()


@pytest.fixture(scope="module")
def blank_server(
    postgres: Postgres, start_filestore: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> LiveServer:
    """Production mode with no ADMIN_PASSWORD: no account at all until /auth/setup."""
    env = accounts_env(postgres, tmp_path_factory, "blank")
    del env["ADMIN_PASSWORD"]
    return start_filestore(env)


class TestSetup:
    def test_first_admin_then_409(self, blank_server: LiveServer) -> None:
        assert_error(login(blank_server, "admin", "admin123"), 401, "invalid_credentials")
        weak = post(
            blank_server, "/auth/setup", json={"username": "root", "password": "password123"}
        )
        assert_error(weak, 422, "password_too_common")

        body = {
            "username": "root",
            "password": STRONG,
            "email": "root@example.com",
            "full_name": "Root",
        }
        with ThreadPoolExecutor(4) as pool:  # racing installers: exactly one wins
            responses = list(
                pool.map(lambda _: post(blank_server, "/auth/setup", json=body), range(4))
            )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409, 409, 409], [r.text for r in responses]
        created = next(r for r in responses if r.status_code == 201).json()
        assert created["role"] == "admin"
        assert created["full_name"] == "Root"
        assert "password" not in str(created).lower().replace("password_reset_required", "")

        token = pair(blank_server, "root", STRONG)["access_token"]
        assert me(blank_server, token).json()["role"] == "admin"
        again = post(
            blank_server, "/auth/setup", json={"username": f"x-{tag()}", "password": STRONG}
        )
        body409 = assert_error(again, 409, "setup_done")
        assert "root" not in str(body409)
        assert sql(blank_server, "SELECT count(*) FROM users WHERE role = 'admin'") == [(1,)]

    def test_setup_is_409_where_an_admin_was_bootstrapped(self, plain_server: LiveServer) -> None:
        response = post(
            plain_server, "/auth/setup", json={"username": f"x-{tag()}", "password": STRONG}
        )
        assert_error(response, 409, "setup_done")

    def test_setup_refuses_unknown_fields(self, plain_server: LiveServer) -> None:
        response = post(
            plain_server, "/auth/setup", json={"username": "x", "password": STRONG, "role": "staff"}
        )
        assert_error(response, 422, "validation_error")


class TestChangePassword:
    def test_needs_the_current_password(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin)
        api = plain_server.api(pair(plain_server, user["username"], password)["access_token"])
        wrong = api.post(
            "/auth/change-password", json={"current_password": "nope-nope", "new_password": STRONG}
        )
        assert_error(wrong, 400, "invalid_current_password")
        assert api.get("/auth/me").status_code == 200  # a wrong guess does not log you out

    def test_needs_a_token(self, plain_server: LiveServer) -> None:
        response = post(
            plain_server,
            "/auth/change-password",
            json={"current_password": "a", "new_password": STRONG},
        )
        assert_error(response, 401, "not_authenticated")

    def test_clears_password_reset_required(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin)
        sql(
            plain_server,
            "UPDATE users SET password_reset_required = true WHERE id = %s",
            (user["id"],),
        )
        api = plain_server.api(pair(plain_server, user["username"], password)["access_token"])
        assert api.get("/auth/me").json()["password_reset_required"] is True
        response = api.post(
            "/auth/change-password",
            json={"current_password": password, "new_password": STRONG + tag()},
        )
        assert response.status_code == 204
        assert admin.get(f"/users/{user['id']}").json()["password_reset_required"] is False


WEAK = [
    ("short7!", "password_too_short"),
    ("password123", "password_too_common"),
    ("PassWord123", "password_too_common"),
    ("iloveyou1", "password_too_common"),
    ("{username}", "password_matches_account"),
    ("{email}", "password_matches_account"),
    ("x" * 1025, "validation_error"),
]


def _fill(template: str, username: str, email: str) -> str:
    return template.replace("{username}", username).replace("{email}", email)


class TestPasswordRules:
    @pytest.mark.parametrize(("template", "code"), WEAK)
    def test_post_users(self, admin: Api, template: str, code: str) -> None:
        username, email = f"rule-{tag()}-user", f"rule-{tag()}@example.com"
        body = {
            "username": username,
            "password": _fill(template, username, email),
            "role": "staff",
            "email": email,
        }
        detail = assert_error(admin.post("/users", json=body), 422, code)["detail"]
        assert detail
        assert admin.get("/users", params={"email": email}).json() == []

    @pytest.mark.parametrize(("template", "code"), WEAK)
    def test_change_password(
        self, plain_server: LiveServer, admin: Api, template: str, code: str
    ) -> None:
        email = f"chg-{tag()}@example.com"
        user, password = new_user(admin, email=email)
        api = plain_server.api(pair(plain_server, user["username"], password)["access_token"])
        new_password = _fill(template, user["username"], email)
        response = api.post(
            "/auth/change-password",
            json={"current_password": password, "new_password": new_password},
        )
        assert_error(response, 422, code)
        assert login(plain_server, user["username"], password).status_code == 200

    @pytest.mark.parametrize(("template", "code"), WEAK[:-1])
    def test_post_customers(self, admin: Api, template: str, code: str) -> None:
        email = f"cust-{tag()}@example.com"
        body = {"full_name": "Rule Test", "email": email, "password": _fill(template, email, email)}
        assert_error(admin.post("/customers", json=body), 422, code)
        assert admin.get("/customers", params={"email": email}).json() == []

    def test_reasons_are_readable(self, admin: Api) -> None:
        body = {"username": f"u-{tag()}", "password": "password123", "role": "staff"}
        detail = admin.post("/users", json=body).json()["detail"]
        assert "common" in detail

    @pytest.mark.parametrize(
        "password",
        [
            "a" * 64 + "-long passphrase with spaces and ünïcödé",
            "12345678x!",
            "correct horse battery staple",
        ],
    )
    def test_long_and_plain_passwords_are_fine(
        self, plain_server: LiveServer, admin: Api, password: str
    ) -> None:
        username = f"ok-{tag()}"
        response = admin.post(
            "/users", json={"username": username, "password": password, "role": "staff"}
        )
        assert response.status_code == 201, response.text
        assert login(plain_server, username, password).status_code == 200


class TestCustomersWithALogin:
    def test_customer_with_password_gets_a_login(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        email = f"Jane.{tag()}@Example.com"
        password = strong_password()
        response = admin.post(
            "/customers", json={"full_name": "Jane Roe", "email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        customer = response.json()
        assert "password" not in customer
        body = pair(plain_server, email.lower(), password)
        profile = me(plain_server, body["access_token"]).json()
        assert profile["role"] == "customer"
        assert profile["customer_id"] == customer["id"]
        assert profile["password_reset_required"] is False

    def test_staff_may_create_one_too(self, plain_server: LiveServer, admin: Api) -> None:
        staff = admin.user_api("staff")
        email = f"s-{tag()}@example.com"
        password = strong_password()
        assert (
            staff.post(
                "/customers", json={"full_name": "S", "email": email, "password": password}
            ).status_code
            == 201
        )
        assert login(plain_server, email, password).status_code == 200

    def test_without_password_no_login_is_created(self, admin: Api) -> None:
        customer = admin.new_customer()
        assert admin.get("/users", params={"customer_id": customer["id"]}).json() == []

    def test_login_taken_rolls_the_customer_back(self, admin: Api) -> None:
        email = f"taken-{tag()}@example.com"
        new_user(admin, "staff", email=email)
        response = admin.post(
            "/customers", json={"full_name": "T", "email": email, "password": strong_password()}
        )
        assert_error(response, 409, "user_exists")
        assert admin.get("/customers", params={"email": email}).json() == []


class TestUserAdministration:
    def test_filters(self, admin: Api) -> None:
        customer = admin.new_customer()
        user, _ = new_user(admin, "customer", customer["id"])
        by_customer = admin.get("/users", params={"customer_id": customer["id"]}).json()
        assert [u["id"] for u in by_customer] == [user["id"]]
        by_email = admin.get("/users", params={"email": customer["email"].upper()}).json()
        assert [u["id"] for u in by_email] == [user["id"]]
        admins = admin.get("/users", params={"role": "admin", "limit": 1000}).json()
        assert admins
        assert {u["role"] for u in admins} == {"admin"}
        assert all("password_hash" not in u for u in admins)
        assert_error(admin.get("/users", params={"role": "root"}), 422)

    @pytest.mark.parametrize("role", ["staff", "customer"])
    def test_only_admins(self, admin: Api, role: str) -> None:
        customer_id = admin.new_customer()["id"] if role == "customer" else None
        api = admin.user_api(role, customer_id)
        assert_error(api.get("/users"), 403, "forbidden_role")
        assert_error(api.http.patch("/users/1", json={"is_active": False}), 403, "forbidden_role")

    def test_role_and_customer_rules(self, admin: Api) -> None:
        user, _ = new_user(admin, "staff")
        patch = admin.http.patch
        assert_error(
            patch(f"/users/{user['id']}", json={"role": "customer"}), 422, "customer_required"
        )
        assert_error(
            patch(f"/users/{user['id']}", json={"customer_id": 1}), 422, "customer_not_allowed"
        )
        assert_error(
            patch(f"/users/{user['id']}", json={"role": "customer", "customer_id": 2**62}),
            422,
            "customer_not_found",
        )
        assert_error(patch(f"/users/{user['id']}", json={"role": None}), 422)
        assert_error(
            patch(f"/users/{user['id']}", json={"password_hash": "x"}), 422, "validation_error"
        )
        customer = admin.new_customer()
        moved = patch(
            f"/users/{user['id']}", json={"role": "customer", "customer_id": customer["id"]}
        )
        assert moved.status_code == 200, moved.text
        assert (moved.json()["role"], moved.json()["customer_id"]) == ("customer", customer["id"])
        back = patch(f"/users/{user['id']}", json={"role": "staff"})
        assert (back.json()["role"], back.json()["customer_id"]) == ("staff", None)
        assert_error(patch("/users/999999999", json={"is_active": False}), 404, "user_not_found")

    def test_the_last_active_admin_cannot_be_removed(self, blank_server: LiveServer) -> None:
        # The only admin of blank_server is "root" (made here unless TestSetup ran first).
        post(blank_server, "/auth/setup", json={"username": "root", "password": STRONG})
        root_token = pair(blank_server, "root", STRONG)["access_token"]
        root = blank_server.api(root_token)
        root_id = root.get("/auth/me").json()["id"]
        assert_error(
            root.http.patch(f"/users/{root_id}", json={"is_active": False}), 409, "last_admin"
        )
        assert_error(
            root.http.patch(f"/users/{root_id}", json={"role": "staff"}), 409, "last_admin"
        )

    def test_me_shows_password_reset_required(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin)
        profile: dict[str, Any] = me(
            plain_server, pair(plain_server, user["username"], password)["access_token"]
        ).json()
        assert profile["password_reset_required"] is False
        assert set(profile) >= {
            "id",
            "username",
            "email",
            "full_name",
            "role",
            "customer_id",
            "is_active",
        }


def test_blank_server_reset_page(blank_server: LiveServer) -> None:
    page = httpx.get(f"{blank_server.base_url}/auth/reset-password", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "location.hash" in page.text
