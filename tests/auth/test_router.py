"""`/auth` and `/users` on a live server: logins, tokens, user creation, the OpenAPI contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from filestore.db import libpq_url
from tests.fixtures.live import Api, LiveServer


@pytest.fixture
def admin(s3_server: LiveServer) -> Api:
    return s3_server.admin()


def login(server: LiveServer, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/auth/login",
        json={"username": username, "password": password},
        timeout=30,
    )


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def token_for(server: LiveServer, user_id: int, **overrides: Any) -> str:
    """A token signed with the server's real secret, with chosen claims."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "ver": 0,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, server.env["JWT_SECRET_KEY"], algorithm="HS256")


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "code"}
    if code is not None:
        assert body["code"] == code
    return body


class TestJsonLogin:
    def test_returns_a_bearer_token_valid_for_30_minutes_and_a_refresh_token(
        self, s3_server: LiveServer
    ) -> None:
        response = login(s3_server, "admin", s3_server.admin_password)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 30 * 60
        claims = claims_of(body["access_token"])
        assert claims["exp"] - claims["iat"] == 30 * 60

    def test_token_works_on_me(self, s3_server: LiveServer) -> None:
        token = login(s3_server, "admin", s3_server.admin_password).json()["access_token"]
        me = s3_server.api(token).get("/auth/me")
        assert me.status_code == 200
        assert me.json()["username"] == "admin"


class TestFormLogin:
    """Swagger UI's Authorize button posts an OAuth2 password form."""

    def test_oauth2_password_form(self, s3_server: LiveServer) -> None:
        response = httpx.post(
            f"{s3_server.base_url}/auth/login",
            data={
                "grant_type": "password",
                "username": "admin",
                "password": s3_server.admin_password,
                "scope": "",
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"
        body = response.json()
        assert body["token_type"] == "bearer"
        me = s3_server.api(body["access_token"]).get("/auth/me")
        assert me.json()["username"] == "admin"

    def test_form_with_wrong_password_is_401(self, s3_server: LiveServer) -> None:
        response = httpx.post(
            f"{s3_server.base_url}/auth/login",
            data={"username": "admin", "password": "wrong-password"},
            timeout=30,
        )
        assert_error(response, 401, "invalid_credentials")

    def test_form_without_password_is_422(self, s3_server: LiveServer) -> None:
        response = httpx.post(
            f"{s3_server.base_url}/auth/login", data={"username": "admin"}, timeout=30
        )
        assert_error(response, 422)


class TestBadCredentials:
    def test_wrong_password_and_unknown_user_look_the_same(self, s3_server: LiveServer) -> None:
        wrong_password = login(s3_server, "admin", "not-the-password")
        unknown_user = login(s3_server, f"nobody-{uuid.uuid4().hex[:8]}", "not-the-password")
        body = assert_error(wrong_password, 401, "invalid_credentials")
        assert assert_error(unknown_user, 401, "invalid_credentials") == body
        assert wrong_password.headers["www-authenticate"] == "Bearer"
        assert unknown_user.headers["www-authenticate"] == "Bearer"

    def test_inactive_user_cannot_log_in_and_its_tokens_stop_working(
        self, s3_server: LiveServer, admin: Api
    ) -> None:
        user, password = admin.new_user("staff")
        token = Api(s3_server.base_url).login(user["username"], password)
        with psycopg.connect(libpq_url(s3_server.env["DATABASE_URL"])) as conn:
            conn.execute("UPDATE users SET is_active = false WHERE id = %s", (user["id"],))
        assert_error(login(s3_server, user["username"], password), 401, "invalid_credentials")
        assert_error(s3_server.api(token).get("/auth/me"), 401, "invalid_token")


class TestMe:
    def test_returns_the_user_without_secrets(self, admin: Api) -> None:
        response = admin.get("/auth/me")
        assert response.status_code == 200
        body = response.json()
        assert body["username"] == "admin"
        assert body["role"] == "admin"
        assert body["is_active"] is True
        assert body["customer_id"] is None
        for secret in ("password", "password_hash", "token_version"):
            assert secret not in body
        assert "argon2" not in response.text

    def test_without_token_is_401(self, s3_server: LiveServer) -> None:
        response = s3_server.api().get("/auth/me")
        assert_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"

    def test_garbage_token_is_401(self, s3_server: LiveServer) -> None:
        assert_error(s3_server.api("not.a.jwt").get("/auth/me"), 401, "invalid_token")


class TestTokenExpiry:
    def test_expired_token_is_refused(self, s3_server: LiveServer, admin: Api) -> None:
        admin_id = admin.get("/auth/me").json()["id"]
        past = datetime.now(UTC) - timedelta(minutes=1)
        token = token_for(s3_server, admin_id, iat=past - timedelta(minutes=30), exp=past)
        assert_error(s3_server.api(token).get("/auth/me"), 401, "token_expired")

    def test_same_token_unexpired_is_accepted(self, s3_server: LiveServer, admin: Api) -> None:
        admin_id = admin.get("/auth/me").json()["id"]
        assert s3_server.api(token_for(s3_server, admin_id)).get("/auth/me").status_code == 200

    def test_token_without_exp_is_refused(self, s3_server: LiveServer, admin: Api) -> None:
        admin_id = admin.get("/auth/me").json()["id"]
        token = token_for(s3_server, admin_id, exp=None)
        assert_error(s3_server.api(token).get("/auth/me"), 401, "invalid_token")

    def test_token_signed_with_another_secret_is_refused(
        self, s3_server: LiveServer, admin: Api
    ) -> None:
        admin_id = admin.get("/auth/me").json()["id"]
        now = datetime.now(UTC)
        forged = jwt.encode(
            {
                "sub": str(admin_id),
                "ver": 0,
                "typ": "access",
                "iat": now,
                "exp": now + timedelta(minutes=5),
            },
            "an-attacker-guess-of-the-secret-0123456789",
            algorithm="HS256",
        )
        assert_error(s3_server.api(forged).get("/auth/me"), 401, "invalid_token")


class TestCreateUser:
    def test_admin_creates_a_staff_user_who_can_log_in(
        self, s3_server: LiveServer, admin: Api
    ) -> None:
        username = f"staff-{uuid.uuid4().hex[:8]}"
        response = admin.post(
            "/users", json={"username": username, "password": "Pw-long-enough", "role": "staff"}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["username"] == username
        assert body["role"] == "staff"
        assert "password_hash" not in body
        assert login(s3_server, username, "Pw-long-enough").status_code == 200

    @pytest.mark.parametrize(
        "extra",
        [
            {"is_active": False},
            {"password_hash": "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB"},
            {"token_version": 7},
            {"id": 1},
            {"password_reset_required": True},
        ],
    )
    def test_server_owned_fields_are_refused(
        self, s3_server: LiveServer, admin: Api, extra: dict[str, Any]
    ) -> None:
        username = f"sneaky-{uuid.uuid4().hex[:8]}"
        body = {"username": username, "password": "Pw-long-enough", "role": "staff", **extra}
        response = admin.post("/users", json=body)
        detail = assert_error(response, 422, "validation_error")["detail"]
        assert any(next(iter(extra)) in err["loc"] for err in detail)
        assert_error(login(s3_server, username, "Pw-long-enough"), 401)

    def test_duplicate_username_is_409(self, admin: Api) -> None:
        body = {
            "username": f"dup-{uuid.uuid4().hex[:8]}",
            "password": "Pw-long-enough",
            "role": "staff",
        }
        assert admin.post("/users", json=body).status_code == 201
        assert_error(admin.post("/users", json=body), 409, "user_exists")

    def test_short_password_is_422(self, admin: Api) -> None:
        body = {"username": f"u-{uuid.uuid4().hex[:8]}", "password": "short", "role": "staff"}
        assert_error(admin.post("/users", json=body), 422)

    def test_staff_may_not_create_users(self, admin: Api) -> None:
        staff = admin.user_api("staff")
        body = {
            "username": f"u-{uuid.uuid4().hex[:8]}",
            "password": "Pw-long-enough",
            "role": "admin",
        }
        assert_error(staff.post("/users", json=body), 403, "forbidden_role")


class TestCustomerLogin:
    def test_customer_user_logs_in_with_its_customers_email(
        self, s3_server: LiveServer, admin: Api
    ) -> None:
        email = f"jane-{uuid.uuid4().hex[:8]}@example.com"
        customer = admin.new_customer(full_name="Jane Smith", email=email)
        user, password = admin.new_user("customer", customer["id"])
        assert user["email"] == email
        for login_name in (email, email.upper(), user["username"]):
            response = login(s3_server, login_name, password)
            assert response.status_code == 200, (login_name, response.text)
        token = login(s3_server, email, password).json()["access_token"]
        me = s3_server.api(token).get("/auth/me").json()
        assert me["role"] == "customer"
        assert me["customer_id"] == customer["id"]

    def test_customer_user_needs_an_existing_customer(self, admin: Api) -> None:
        body = {
            "username": f"c-{uuid.uuid4().hex[:8]}",
            "password": "Pw-long-enough",
            "role": "customer",
            "customer_id": 9_000_000,
        }
        assert_error(admin.post("/users", json=body), 422, "customer_not_found")


class TestMalformedLogin:
    @pytest.mark.parametrize(
        ("content", "content_type"),
        [
            (b'{"username": "admin", "password": ', "application/json"),
            (b"", "application/json"),
            (b"[]", "application/json"),
            (b'{"username": "admin"}', "application/json"),
            (b'{"username": "admin", "password": "x", "role": "admin"}', "application/json"),
            (b"\xff\xfe\x00garbage", "application/json"),
            (b"username=admin&password=x", "text/plain"),
            (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        ],
    )
    def test_bad_bodies_are_4xx_json(
        self, s3_server: LiveServer, content: bytes, content_type: str
    ) -> None:
        response = httpx.post(
            f"{s3_server.base_url}/auth/login",
            content=content,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        assert 400 <= response.status_code < 500, response.text
        body = response.json()
        assert set(body) == {"detail", "code"}


class TestOpenApi:
    def test_docs_page_loads(self, s3_server: LiveServer) -> None:
        response = httpx.get(f"{s3_server.base_url}/docs", timeout=30)
        assert response.status_code == 200
        assert "swagger-ui" in response.text.lower()

    def test_bearer_security_scheme_points_at_login(self, s3_server: LiveServer) -> None:
        response = httpx.get(f"{s3_server.base_url}/openapi.json", timeout=30)
        assert response.status_code == 200
        spec = response.json()
        schemes = spec["components"]["securitySchemes"]
        oauth2 = [s for s in schemes.values() if s["type"] == "oauth2"]
        assert len(oauth2) == 1
        assert oauth2[0]["flows"]["password"]["tokenUrl"] == "/auth/login"
        scheme_name = next(name for name, s in schemes.items() if s["type"] == "oauth2")
        me = spec["paths"]["/auth/me"]["get"]
        assert {scheme_name: []} in me["security"]
        login_body = spec["paths"]["/auth/login"]["post"]["requestBody"]["content"]
        assert {"application/json", "application/x-www-form-urlencoded"} <= set(login_body)
