"""The console's cookie session and the API's CSRF check, on the in-process app (fast tier)."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx
import pytest

from filestore.auth.cookies import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from tests.fixtures.app import ADMIN_PASSWORD, AsyncApi

ORIGIN = "http://fast.test"


def session_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    found: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


class Session:
    """The cookies a browser would hold after the console's sign-in."""

    def __init__(self, response: httpx.Response) -> None:
        self.values = {name: c[name].value for name, c in session_cookies(response).items()}

    def headers(self, *, csrf: str | None = None) -> dict[str, str]:
        access, csrf_cookie = self.values[ACCESS_COOKIE], self.values[CSRF_COOKIE]
        headers = {"Cookie": f"{ACCESS_COOKIE}={access}; {CSRF_COOKIE}={csrf_cookie}"}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        return headers

    def refresh_headers(self) -> dict[str, str]:
        return {
            "Cookie": f"{REFRESH_COOKIE}={self.values[REFRESH_COOKIE]}; "
            f"{CSRF_COOKIE}={self.values[CSRF_COOKIE]}",
            "X-CSRF-Token": self.values[CSRF_COOKIE],
        }


async def sign_in(api: AsyncApi) -> Session:
    response = await api.client.post(
        "/console/session",
        json={"username": "admin", "password": ADMIN_PASSWORD},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 204, response.text
    return Session(response)


class TestSignIn:
    async def test_cookies_hold_the_tokens_not_the_page(self, app_client: AsyncApi) -> None:
        response = await app_client.client.post(
            "/console/session",
            json={"username": "admin", "password": ADMIN_PASSWORD},
            headers={"Origin": ORIGIN},
        )
        assert response.status_code == 204
        assert response.content == b""
        cookies = session_cookies(response)
        assert set(cookies) == {ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE}
        for name, cookie in cookies.items():
            assert cookie[name]["samesite"].lower() == "strict"
        assert cookies[ACCESS_COOKIE][ACCESS_COOKIE]["httponly"]
        assert cookies[REFRESH_COOKIE][REFRESH_COOKIE]["httponly"]
        assert cookies[REFRESH_COOKIE][REFRESH_COOKIE]["path"] == "/console/session"
        assert not cookies[CSRF_COOKIE][CSRF_COOKIE]["httponly"]

    async def test_wrong_password_401(self, app_client: AsyncApi) -> None:
        response = await app_client.client.post(
            "/console/session", json={"username": "admin", "password": "nope"}
        )
        assert response.status_code == 401
        assert "set-cookie" not in response.headers

    async def test_from_another_site_403(self, app_client: AsyncApi) -> None:
        response = await app_client.client.post(
            "/console/session",
            json={"username": "admin", "password": ADMIN_PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert response.json()["code"] == "cross_origin"


class TestCsrf:
    async def test_reads_need_only_the_cookie(self, app_client: AsyncApi) -> None:
        session = await sign_in(app_client)
        response = await app_client.client.get("/auth/me", headers=session.headers())
        assert response.status_code == 200
        assert response.json()["username"] == "admin"

    @pytest.mark.parametrize("csrf", [None, "", "forged"])
    async def test_writes_without_the_token_403(
        self, app_client: AsyncApi, csrf: str | None
    ) -> None:
        session = await sign_in(app_client)
        response = await app_client.client.post(
            "/customers",
            json={"full_name": "Eve", "email": "eve@example.com"},
            headers=session.headers(csrf=csrf),
        )
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"

    async def test_writes_with_the_token(self, app_client: AsyncApi) -> None:
        session = await sign_in(app_client)
        response = await app_client.client.post(
            "/customers",
            json={"full_name": "Ann", "email": "ann-csrf@example.com"},
            headers=session.headers(csrf=session.values[CSRF_COOKIE]),
        )
        assert response.status_code == 201, response.text

    async def test_bearer_needs_no_csrf(self, admin_client: AsyncApi) -> None:
        response = await admin_client.post(
            "/customers", json={"full_name": "Bo", "email": "bo-csrf@example.com"}
        )
        assert response.status_code == 201


class TestRefreshAndSignOut:
    async def test_refresh_rotates_and_sign_out_ends_the_session(
        self, app_client: AsyncApi
    ) -> None:
        session = await sign_in(app_client)
        refreshed = await app_client.client.post(
            "/console/session/refresh", headers=session.refresh_headers()
        )
        assert refreshed.status_code == 204
        renewed = Session(refreshed)
        assert renewed.values[REFRESH_COOKIE] != session.values[REFRESH_COOKIE]
        again = await app_client.client.post(
            "/console/session/refresh", headers=session.refresh_headers()
        )
        assert again.status_code == 401
        out = await app_client.client.post(
            "/console/session/logout", headers=renewed.refresh_headers()
        )
        assert out.status_code == 204
        cleared = session_cookies(out)
        assert set(cleared) == {ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE}
        after = await app_client.client.get("/auth/me", headers=renewed.headers())
        assert after.status_code == 401

    async def test_sign_out_needs_the_csrf_token(self, app_client: AsyncApi) -> None:
        session = await sign_in(app_client)
        headers = session.refresh_headers()
        del headers["X-CSRF-Token"]
        response = await app_client.client.post("/console/session/logout", headers=headers)
        assert response.status_code == 403


class TestPage:
    async def test_strict_headers_and_not_in_the_api_schema(self, app_client: AsyncApi) -> None:
        response = await app_client.client.get("/console")
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp
        assert "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert '<script src="/console/static/app.js' in response.text
        schema = (await app_client.client.get("/openapi.json")).json()
        assert not [p for p in schema["paths"] if p.startswith("/console")]

    async def test_static_files_are_served(self, app_client: AsyncApi) -> None:
        for path in ("app.js", "app.css", "vendor/uppy.min.js", "vendor/LICENSES.txt"):
            response = await app_client.client.get(f"/console/static/{path}")
            assert response.status_code == 200, path


class TestCustomerSearch:
    async def test_q_matches_part_of_name_or_email(self, admin_client: AsyncApi) -> None:
        await admin_client.post(
            "/customers", json={"full_name": "Zoë Quarterman", "email": "zq@example.com"}
        )
        await admin_client.post(
            "/customers", json={"full_name": "100% Fibre Ltd", "email": "fibre@example.com"}
        )
        by_name = (await admin_client.get("/customers", params={"q": "QUARTER"})).json()
        assert [c["full_name"] for c in by_name] == ["Zoë Quarterman"]
        by_email = (await admin_client.get("/customers", params={"q": "zq@"})).json()
        assert [c["email"] for c in by_email] == ["zq@example.com"]
        percent = (await admin_client.get("/customers", params={"q": "0% f"})).json()
        assert [c["full_name"] for c in percent] == ["100% Fibre Ltd"]
        wildcard = (await admin_client.get("/customers", params={"q": "%"})).json()
        assert [c["full_name"] for c in wildcard] == ["100% Fibre Ltd"]
