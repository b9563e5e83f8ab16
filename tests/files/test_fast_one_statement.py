"""The hot reads check the token and read in ONE statement (`files.queries.caller_*`): a
file's metadata, a download with its audit event, a HEAD. What that must keep: revocation
takes effect at once on each of them (logout, deactivation, another token version), a token
without a login session works through the same statement, visibility is still decided from the
caller's row, and a download's event is written and logged exactly once, only when the file
was served to a caller who may see it.

Through the app in the test's transaction; its SAVEPOINT / RELEASE are not counted."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from filestore.auth.security import create_access_token
from tests.files.test_listing_plan import statements
from tests.fixtures.app import AsyncApi
from tests.fixtures.logs import capture_logs

CSV = b"name,email\nAda,ada@example.com\n"


async def new_file(admin: AsyncApi, **fields: Any) -> tuple[int, int]:
    """A customer and a file of theirs: (customer id, file id)."""
    customer_id: int = (await admin.new_customer())["id"]
    response = await admin.upload(CSV, "a.csv", customer_id=customer_id, **fields)
    assert response.status_code == 201, response.text
    file_id: int = response.json()["id"]
    return customer_id, file_id


async def download_events(admin: AsyncApi, file_id: int) -> list[dict[str, Any]]:
    response = await admin.get(
        "/audit-events", params={"file_id": file_id, "action": "file.downloaded"}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def no_transaction(sent: list[str]) -> bool:
    return not any(s.strip().upper().startswith(("BEGIN", "SET", "COMMIT")) for s in sent)


class TestOneRoundTrip:
    async def test_metadata_is_one_statement(
        self, admin_client: AsyncApi, fast_engine: AsyncEngine
    ) -> None:
        _, file_id = await new_file(admin_client)
        with statements(fast_engine) as sent:
            response = await admin_client.get(f"/files/{file_id}")
        assert response.status_code == 200, response.text
        assert response.json()["id"] == file_id
        assert len(sent) == 1, sent
        assert "FROM users" in sent[0]
        assert "file_uploads" in sent[0]
        assert no_transaction(sent)

    async def test_a_download_and_its_audit_event_are_one_statement(
        self, admin_client: AsyncApi, fast_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        customer_id, file_id = await new_file(admin_client)
        with statements(fast_engine) as sent, capture_logs(monkeypatch) as logs:
            response = await admin_client.get(f"/files/download/{file_id}")
        assert response.status_code == 200, response.text
        assert response.content == CSV
        assert len(sent) == 1, sent
        assert "INSERT INTO audit_events" in sent[0]
        assert no_transaction(sent)
        [event] = await download_events(admin_client, file_id)
        me = (await admin_client.get("/auth/me")).json()["id"]
        assert (event["actor_id"], event["customer_id"]) == (me, customer_id)
        assert event["details"] == {"filename": "a.csv", "bucket": "customer-uploads"}
        lines = [line for line in logs if line["event"] == "audit.file.downloaded"]
        assert [line["file_id"] for line in lines] == [file_id]

    async def test_a_head_is_one_statement_and_no_event(
        self, admin_client: AsyncApi, fast_engine: AsyncEngine
    ) -> None:
        _, file_id = await new_file(admin_client)
        with statements(fast_engine) as sent:
            response = await admin_client.client.head(
                f"/files/download/{file_id}",
                headers={"Authorization": f"Bearer {admin_client.token}"},
            )
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(CSV))
        assert len(sent) == 1, sent
        assert "INSERT" not in sent[0]
        assert await download_events(admin_client, file_id) == []


class TestNothingIsAuditedThatWasNotServed:
    async def test_a_file_the_caller_may_not_see_is_404_without_an_event(
        self, admin_client: AsyncApi, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, file_id = await new_file(admin_client)
        other = (await admin_client.new_customer())["id"]
        customer = await admin_client.user_api("customer", customer_id=other)
        with capture_logs(monkeypatch) as logs:
            refused = await customer.get(f"/files/download/{file_id}")
        assert refused.status_code == 404
        assert refused.json()["code"] == "file_not_found"
        assert await download_events(admin_client, file_id) == []
        assert not [line for line in logs if line["event"] == "audit.file.downloaded"]

    async def test_a_customer_downloads_its_own_file_once_audited(
        self, admin_client: AsyncApi
    ) -> None:
        customer_id, file_id = await new_file(admin_client)
        customer = await admin_client.user_api("customer", customer_id=customer_id)
        assert (await customer.get(f"/files/download/{file_id}")).content == CSV
        assert (await customer.get(f"/files/{file_id}")).status_code == 200
        [event] = await download_events(admin_client, file_id)
        assert event["actor_id"] == (await customer.get("/auth/me")).json()["id"]

    async def test_a_staff_member_never_downloads_a_backup(self, admin_client: AsyncApi) -> None:
        _, file_id = await new_file(admin_client, file_type="backup")
        staff = await admin_client.user_api("staff")
        assert (await staff.get(f"/files/download/{file_id}")).status_code == 404
        assert (await staff.get(f"/files/{file_id}")).status_code == 404
        assert (await admin_client.get(f"/files/download/{file_id}")).status_code == 200
        assert len(await download_events(admin_client, file_id)) == 1


class TestRevocationOnTheOneStatementReads:
    async def _reader(self, admin: AsyncApi) -> tuple[dict[str, Any], dict[str, Any], AsyncApi]:
        user, password = await admin.new_user("staff")
        response = await admin.client.post(
            "/auth/login", data={"username": user["username"], "password": password}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return user, tokens, AsyncApi(admin.client, tokens["access_token"])

    @staticmethod
    def paths(customer_id: int, file_id: int) -> list[str]:
        return [
            f"/files/{file_id}",
            f"/files/customer/{customer_id}",
            f"/files/download/{file_id}",
            "/auth/me",
        ]

    async def _all_refused(self, reader: AsyncApi, paths: list[str]) -> None:
        for path in paths:
            refused = await reader.get(path)
            assert refused.status_code == 401, path
            assert refused.json()["code"] == "invalid_token", path

    async def test_logout_refuses_every_read_at_once(self, admin_client: AsyncApi) -> None:
        customer_id, file_id = await new_file(admin_client)
        _, tokens, reader = await self._reader(admin_client)
        paths = self.paths(customer_id, file_id)
        for path in paths:
            assert (await reader.get(path)).status_code == 200, path
        out = await admin_client.client.post(
            "/auth/logout", json={"refresh_token": tokens["refresh_token"]}
        )
        assert out.status_code == 204, out.text
        await self._all_refused(reader, paths)
        assert len(await download_events(admin_client, file_id)) == 1  # the one served

    async def test_deactivation_refuses_every_read_at_once(self, admin_client: AsyncApi) -> None:
        customer_id, file_id = await new_file(admin_client)
        user, _, reader = await self._reader(admin_client)
        paths = self.paths(customer_id, file_id)
        assert (await reader.get(paths[0])).status_code == 200
        changed = await admin_client.patch(f"/users/{user['id']}", json={"is_active": False})
        assert changed.status_code == 200, changed.text
        await self._all_refused(reader, paths)
        assert await download_events(admin_client, file_id) == []

    async def test_a_token_without_a_login_session_uses_the_same_checks(
        self, admin_client: AsyncApi, fast_app: FastAPI, fast_engine: AsyncEngine
    ) -> None:
        customer_id, file_id = await new_file(admin_client)
        user, _, _ = await self._reader(admin_client)
        secret = fast_app.state.settings.jwt_secret_key

        def token(version: int) -> AsyncApi:
            signed = create_access_token(
                user_id=user["id"], token_version=version, secret=secret, expires_minutes=5
            )
            return AsyncApi(admin_client.client, signed)

        paths = self.paths(customer_id, file_id)
        with statements(fast_engine) as sent:
            assert (await token(0).get(paths[0])).status_code == 200
        assert "auth_sessions" not in sent[0]
        for path in paths:
            assert (await token(0).get(path)).status_code == 200, path
        await self._all_refused(token(1), paths)
