"""File access is audited: upload, download (who, which file, from where), delete, and the
admin's filters by file and by customer. Links issued and virus rejections need S3 and clamd:
`test_file_audit_live.py`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.files.tus.client import Tus
from tests.fixtures.app import AsyncApi
from tests.fixtures.logs import capture_logs

CSV = b"full_name,email\nJohn Doe,john@example.com\n"
CLIENT_IP = "203.0.113.7"  # the fast tier's client address


async def events(admin: AsyncApi, **filters: Any) -> list[dict[str, Any]]:
    response = await admin.get("/audit-events", params=filters)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


class TestFileAccessAudit:
    async def test_upload_download_delete_are_recorded(self, admin_client: AsyncApi) -> None:
        customer = (await admin_client.new_customer())["id"]
        uploaded = await admin_client.upload(CSV, "list.csv", customer_id=customer)
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["id"]
        assert (await admin_client.get(f"/files/download/{file_id}")).content == CSV
        assert (await admin_client.delete(f"/files/{file_id}")).status_code == 204

        found = await events(admin_client, file_id=file_id)
        assert [e["action"] for e in found] == ["file.deleted", "file.downloaded", "file.uploaded"]
        me = (await admin_client.get("/auth/me")).json()["id"]
        for event in found:
            assert event["actor_id"] == me
            assert event["client_ip"] == CLIENT_IP
            assert event["file_id"] == file_id
            assert event["customer_id"] == customer
            assert event["details"]["filename"] == "list.csv"
        assert found[-1]["details"]["size"] == len(CSV)

    async def test_a_range_download_says_which_range(self, admin_client: AsyncApi) -> None:
        customer = (await admin_client.new_customer())["id"]
        file_id = (await admin_client.upload(CSV, customer_id=customer)).json()["id"]
        part = await admin_client.get(f"/files/download/{file_id}", headers={"Range": "bytes=0-3"})
        assert part.status_code == 206
        [downloaded] = await events(admin_client, file_id=file_id, action="file.downloaded")
        assert downloaded["details"]["range"] == "bytes=0-3"

    async def test_a_download_logs_its_event(
        self, admin_client: AsyncApi, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Written by a Core INSERT in the read session (`audit.service.record_now`), not the
        # ORM's after-commit hook: the line must still be there, once.
        customer = (await admin_client.new_customer())["id"]
        file_id = (await admin_client.upload(CSV, customer_id=customer)).json()["id"]
        with capture_logs(monkeypatch) as logs:
            assert (await admin_client.get(f"/files/download/{file_id}")).status_code == 200
        lines = [line for line in logs if line["event"] == "audit.file.downloaded"]
        assert [(line["file_id"], line["client_ip"]) for line in lines] == [(file_id, CLIENT_IP)]

    async def test_admins_filter_by_customer(self, admin_client: AsyncApi) -> None:
        mine, other = [(await admin_client.new_customer())["id"] for _ in range(2)]
        kept = (await admin_client.upload(CSV, "a.csv", customer_id=mine)).json()["id"]
        await admin_client.upload(CSV, "b.csv", customer_id=other)
        found = await events(admin_client, customer_id=mine)
        assert [(e["action"], e["file_id"]) for e in found] == [("file.uploaded", kept)]

    async def test_only_admins_read_them(self, admin_client: AsyncApi) -> None:
        customer = (await admin_client.new_customer())["id"]
        user, password = await admin_client.new_user("staff")
        staff = await admin_client.login(user["username"], password)
        response = await staff.get("/audit-events", params={"customer_id": customer})
        assert response.status_code == 403

    async def test_a_resumable_upload_is_recorded(self, admin_client: AsyncApi) -> None:
        customer = (await admin_client.new_customer())["id"]
        stored = await Tus(admin_client).upload(
            CSV, {"filename": "tus.csv", "customer_id": str(customer)}
        )
        [uploaded] = await events(admin_client, file_id=stored["id"])
        assert uploaded["action"] == "file.uploaded"
        assert uploaded["details"]["via"] == "tus"
        assert (uploaded["customer_id"], uploaded["client_ip"]) == (customer, CLIENT_IP)
