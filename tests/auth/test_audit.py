"""The audit trail on a live server: what is recorded (actor, target, address, agent, time),
`GET /audit-events` and its filters, admins only, append-only, and no secret anywhere in it
or in the server's log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.auth.support import (
    assert_error,
    login,
    new_user,
    pair,
    post,
    refresh,
    sql,
    strong_password,
    tag,
)
from tests.fixtures.live import Api, LiveServer


@pytest.fixture
def admin(plain_server: LiveServer) -> Api:
    return plain_server.admin()


def events(admin: Api, **params: Any) -> list[dict[str, Any]]:
    response = admin.get("/audit-events", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def actions_for(admin: Api, user_id: int) -> list[str]:
    return [e["action"] for e in reversed(events(admin, target_user_id=user_id))]


class TestRecorded:
    def test_an_accounts_life(self, plain_server: LiveServer, admin: Api) -> None:
        admin_id = admin.get("/auth/me").json()["id"]
        user, password = new_user(admin, "staff")
        ip = "10.20.30.40"
        headers = {"User-Agent": "audit-test/1.0"}
        assert login(plain_server, user["username"], "wrong-password", ip=ip).status_code == 401
        first = post(
            plain_server,
            "/auth/login",
            ip=ip,
            headers=headers,
            json={"username": user["username"], "password": password},
        ).json()
        rotated = refresh(plain_server, first["refresh_token"]).json()
        assert refresh(plain_server, first["refresh_token"]).status_code == 401  # reuse
        second = pair(plain_server, user["username"], password)
        assert (
            post(
                plain_server, "/auth/logout", json={"refresh_token": second["refresh_token"]}
            ).status_code
            == 204
        )
        new_password = strong_password()
        third = pair(plain_server, user["username"], password)
        changed = plain_server.api(third["access_token"]).post(
            "/auth/change-password",
            json={"current_password": password, "new_password": new_password},
        )
        assert changed.status_code == 204
        token = admin.post(f"/users/{user['id']}/password-reset").json()["reset_token"]
        assert (
            post(
                plain_server,
                "/auth/reset-password",
                json={"token": token, "new_password": strong_password()},
            ).status_code
            == 204
        )
        assert admin.http.patch(f"/users/{user['id']}", json={"role": "admin"}).status_code == 200
        assert (
            admin.http.patch(f"/users/{user['id']}", json={"is_active": False}).status_code == 200
        )

        assert actions_for(admin, user["id"]) == [
            "user.created",
            "login.failure",
            "login.success",
            "refresh.reuse_detected",
            "login.success",
            "logout",
            "login.success",
            "password.changed",
            "password.reset_issued",
            "password.reset",
            "user.role_changed",
            "user.deactivated",
        ]
        by_action = {e["action"]: e for e in events(admin, target_user_id=user["id"])}
        created = by_action["user.created"]
        assert (created["actor_id"], created["details"]["role"]) == (admin_id, "staff")
        failure = by_action["login.failure"]
        assert (failure["client_ip"], failure["actor_id"], failure["details"]) == (
            ip,
            None,
            {"reason": "bad_password"},
        )
        success = next(
            e
            for e in events(admin, target_user_id=user["id"], action="login.success")
            if e["user_agent"] == "audit-test/1.0"
        )
        assert (success["client_ip"], success["actor_id"]) == (ip, user["id"])
        assert by_action["user.role_changed"]["details"] == {"from": "staff", "to": "admin"}
        assert by_action["user.deactivated"]["actor_id"] == admin_id
        assert by_action["password.reset_issued"]["actor_id"] == admin_id
        assert datetime.fromisoformat(created["created_at"]) > datetime.now(UTC) - timedelta(
            minutes=5
        )
        assert rotated  # (used above only to make the first token a spent one)

    def test_unknown_name_failure_keeps_no_trace_of_the_name(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        name = f"typed-password-{tag()}"
        assert login(plain_server, name, "whatever-1", ip="10.9.9.9").status_code == 401
        found = [e for e in events(admin, action="login.failure") if e["client_ip"] == "10.9.9.9"]
        assert found
        assert found[0]["details"] == {"reason": "unknown_user"}
        assert found[0]["target_user_id"] is None
        dump = sql(plain_server, "SELECT string_agg(a::text, ' ') FROM audit_events a")[0][0]
        assert name not in dump


class TestListing:
    def test_filters_and_paging(self, plain_server: LiveServer, admin: Api) -> None:
        admin_id = admin.get("/auth/me").json()["id"]
        since = datetime.now(UTC) - timedelta(seconds=1)
        user, _ = new_user(admin)
        mine = events(admin, actor_id=admin_id, action="user.created", since=since.isoformat())
        assert user["id"] in {e["target_user_id"] for e in mine}
        assert {e["action"] for e in mine} == {"user.created"}
        assert all(datetime.fromisoformat(e["created_at"]) >= since for e in mine)
        page1, page2 = events(admin, limit=2), events(admin, limit=2, offset=2)
        assert len(page1) == 2
        assert page1[0]["id"] > page1[1]["id"] > page2[0]["id"]
        assert events(admin, action="no.such.action") == []
        assert_error(admin.get("/audit-events", params={"limit": 0}), 422)

    @pytest.mark.parametrize("role", ["staff", "customer"])
    def test_admins_only(self, admin: Api, role: str) -> None:
        customer_id = admin.new_customer()["id"] if role == "customer" else None
        assert_error(admin.user_api(role, customer_id).get("/audit-events"), 403, "forbidden_role")

    def test_needs_a_token(self, plain_server: LiveServer) -> None:
        assert_error(plain_server.api().get("/audit-events"), 401)


class TestIntegrity:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_events SET action = 'x'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ],
    )
    def test_append_only(self, plain_server: LiveServer, statement: str) -> None:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql(plain_server, statement)

    def test_no_secrets_in_audit_or_log(self, plain_server: LiveServer, admin: Api) -> None:
        user, password = new_user(admin)
        body = pair(plain_server, user["username"], password)
        rotated = refresh(plain_server, body["refresh_token"]).json()
        reset = admin.post(f"/users/{user['id']}/password-reset").json()["reset_token"]
        new_password = strong_password()
        assert (
            post(
                plain_server,
                "/auth/reset-password",
                json={"token": reset, "new_password": new_password},
            ).status_code
            == 204
        )
        assert login(plain_server, user["username"], password + "-typo").status_code == 401
        secrets = [
            password,
            new_password,
            password + "-typo",
            body["refresh_token"],
            rotated["refresh_token"],
            reset,
            body["access_token"],
        ]
        dump = sql(plain_server, "SELECT string_agg(a::text, ' ') FROM audit_events a")[0][0]
        log = plain_server.log()
        for secret in secrets:
            assert secret not in dump
            assert secret not in log
