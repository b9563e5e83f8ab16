"""Refresh tokens, sessions and revocation against a live server: rotation, reuse detection,
the concurrent-refresh race, logout, and every old token dying at once after a password change,
a deactivation or a role change."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest

from tests.auth.conftest import FAST_REFRESH_SECONDS
from tests.auth.support import assert_error, login, me, new_user, pair, post, refresh, sql
from tests.fixtures.live import Api, LiveServer


@pytest.fixture
def admin(plain_server: LiveServer) -> Api:
    return plain_server.admin()


class TestLogin:
    def test_json_login_returns_both_tokens(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin)
        body = pair(plain_server, user["username"], password)
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 30 * 60
        assert body["refresh_token"] != body["access_token"]
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 30 * 60
        assert "sid" in claims

    def test_form_login_returns_both_tokens(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin)
        response = post(
            plain_server,
            "/auth/login",
            data={"grant_type": "password", "username": user["username"], "password": password},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["refresh_token"]
        assert refresh(plain_server, body["refresh_token"]).status_code == 200

    def test_refresh_token_is_stored_only_as_its_hash(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        user, password = new_user(admin)
        token = pair(plain_server, user["username"], password)["refresh_token"]
        digest = hashlib.sha256(token.encode()).hexdigest()
        rows = sql(
            plain_server,
            "SELECT rt.token_hash FROM refresh_tokens rt "
            "JOIN auth_sessions s ON s.id = rt.session_id "
            "WHERE s.user_id = %s",
            (user["id"],),
        )
        assert rows == [(digest,)]
        dump = sql(plain_server, "SELECT string_agg(t::text, ' ') FROM refresh_tokens t")[0][0]
        assert token not in dump


class TestRefresh:
    def test_rotation_gives_a_working_pair_and_spends_the_old_token(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        user, password = new_user(admin)
        first = pair(plain_server, user["username"], password)
        response = refresh(plain_server, first["refresh_token"])
        assert response.status_code == 200, response.text
        second = response.json()
        assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert second["refresh_token"] != first["refresh_token"]
        assert me(plain_server, second["access_token"]).json()["id"] == user["id"]
        third = refresh(plain_server, second["refresh_token"])
        assert third.status_code == 200, third.text

    def test_reuse_of_a_rotated_token_revokes_the_whole_family(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        user, password = new_user(admin)
        stolen = pair(plain_server, user["username"], password)
        newer = refresh(plain_server, stolen["refresh_token"]).json()  # the victim rotates
        newest = refresh(plain_server, newer["refresh_token"]).json()
        assert me(plain_server, newest["access_token"]).status_code == 200
        other_session = pair(plain_server, user["username"], password)

        # The attacker replays the rotated token: refused, and the family is over.
        assert_error(refresh(plain_server, stolen["refresh_token"]), 401, "invalid_refresh_token")
        assert_error(refresh(plain_server, newest["refresh_token"]), 401, "invalid_refresh_token")
        assert_error(me(plain_server, newest["access_token"]), 401, "invalid_token")
        assert_error(me(plain_server, stolen["access_token"]), 401, "invalid_token")
        # Another login of the same user is another family: untouched.
        assert me(plain_server, other_session["access_token"]).status_code == 200
        assert refresh(plain_server, other_session["refresh_token"]).status_code == 200
        reason = sql(
            plain_server,
            "SELECT DISTINCT revoked_reason FROM auth_sessions "
            "WHERE user_id = %s AND revoked_at IS NOT NULL",
            (user["id"],),
        )
        assert reason == [("reuse",)]

    def test_concurrent_refreshes_with_one_token_exactly_one_wins(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        user, password = new_user(admin)
        token = pair(plain_server, user["username"], password)["refresh_token"]
        attempts = 10
        with httpx.Client(base_url=plain_server.base_url, timeout=60) as client:
            client.get("/health")

            def one(_: int) -> httpx.Response:
                return client.post("/auth/refresh", json={"refresh_token": token})

            with ThreadPoolExecutor(attempts) as pool:
                responses = list(pool.map(one, range(attempts)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [401] * (attempts - 1), [r.text for r in responses]
        issued = sql(
            plain_server,
            "SELECT count(*) FROM refresh_tokens rt JOIN auth_sessions s ON s.id = rt.session_id "
            "WHERE s.user_id = %s",
            (user["id"],),
        )
        assert issued == [(2,)]  # the login's token and ONE successor, never two
        # The losers presented a spent token: that is reuse, so the family is revoked and even
        # the winner's new tokens are dead (clients must not refresh in parallel).
        winner = next(r for r in responses if r.status_code == 200).json()
        assert_error(refresh(plain_server, winner["refresh_token"]), 401, "invalid_refresh_token")

    @pytest.mark.parametrize("token", ["", "x" * 201, "not-a-token", "A" * 43])
    def test_unknown_or_malformed_tokens(self, plain_server: LiveServer, token: str) -> None:
        response = refresh(plain_server, token)
        assert response.status_code in (401, 422), response.text
        if token and len(token) <= 200:
            assert_error(response, 401, "invalid_refresh_token")

    def test_access_token_is_not_a_refresh_token(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        user, password = new_user(admin)
        body = pair(plain_server, user["username"], password)
        assert_error(
            refresh(plain_server, body["access_token"][:200]), 401, "invalid_refresh_token"
        )

    def test_refresh_token_expires(self, fast_server: LiveServer) -> None:
        admin = fast_server.admin()
        user, password = new_user(admin)
        token = pair(fast_server, user["username"], password)["refresh_token"]
        time.sleep(FAST_REFRESH_SECONDS + 1)
        assert_error(refresh(fast_server, token), 401, "invalid_refresh_token")


class TestLogout:
    def test_logout_ends_the_session_and_its_access_tokens(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        user, password = new_user(admin)
        session = pair(plain_server, user["username"], password)
        rotated = refresh(plain_server, session["refresh_token"]).json()
        other = pair(plain_server, user["username"], password)

        response = post(
            plain_server, "/auth/logout", json={"refresh_token": rotated["refresh_token"]}
        )
        assert response.status_code == 204, response.text
        assert_error(refresh(plain_server, rotated["refresh_token"]), 401, "invalid_refresh_token")
        assert_error(me(plain_server, rotated["access_token"]), 401, "invalid_token")
        assert_error(me(plain_server, session["access_token"]), 401, "invalid_token")
        assert me(plain_server, other["access_token"]).status_code == 200

    def test_logout_with_an_unknown_token_is_still_204(self, plain_server: LiveServer) -> None:
        response = post(plain_server, "/auth/logout", json={"refresh_token": "never-issued"})
        assert response.status_code == 204

    def test_logout_needs_a_body(self, plain_server: LiveServer) -> None:
        assert_error(post(plain_server, "/auth/logout", json={}), 422)


class TestEverythingDiesAtOnce:
    def _sessions(self, server: LiveServer, username: str, password: str) -> list[dict[str, str]]:
        return [pair(server, username, password) for _ in range(2)]

    def _all_dead(self, server: LiveServer, sessions: list[dict[str, str]]) -> None:
        for body in sessions:
            assert_error(me(server, body["access_token"]), 401, "invalid_token")
            assert_error(refresh(server, body["refresh_token"]), 401, "invalid_refresh_token")

    def test_after_password_change(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin)
        sessions = self._sessions(plain_server, user["username"], password)
        new_password = password + "-changed"
        response = plain_server.api(sessions[0]["access_token"]).post(
            "/auth/change-password",
            json={"current_password": password, "new_password": new_password},
        )
        assert response.status_code == 204, response.text
        self._all_dead(plain_server, sessions)
        assert_error(login(plain_server, user["username"], password), 401, "invalid_credentials")
        assert (
            me(
                plain_server, pair(plain_server, user["username"], new_password)["access_token"]
            ).status_code
            == 200
        )

    def test_after_deactivation_and_back(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin)
        sessions = self._sessions(plain_server, user["username"], password)
        assert (
            admin.http.patch(f"/users/{user['id']}", json={"is_active": False}).status_code == 200
        )
        self._all_dead(plain_server, sessions)
        assert_error(login(plain_server, user["username"], password), 401, "invalid_credentials")
        assert admin.http.patch(f"/users/{user['id']}", json={"is_active": True}).status_code == 200
        assert (
            me(
                plain_server, pair(plain_server, user["username"], password)["access_token"]
            ).status_code
            == 200
        )

    def test_after_role_change(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin, "staff")
        sessions = self._sessions(plain_server, user["username"], password)
        response = admin.http.patch(f"/users/{user['id']}", json={"role": "admin"})
        assert response.status_code == 200, response.text
        self._all_dead(plain_server, sessions)
        fresh = pair(plain_server, user["username"], password)
        assert me(plain_server, fresh["access_token"]).json()["role"] == "admin"

    def test_unchanged_patch_keeps_tokens(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin, "staff")
        body = pair(plain_server, user["username"], password)
        assert (
            admin.http.patch(
                f"/users/{user['id']}", json={"is_active": True, "role": "staff"}
            ).status_code
            == 200
        )
        assert me(plain_server, body["access_token"]).status_code == 200
