"""A file that arrives whole within its sniffed head (8 KiB) is verified in memory and stored
only once every rule has passed: one PUT, then its `completed` row and its audit event in one
statement. Refused bytes leave a `rejected` row and no object; a failed row write leaves no
object; fields after the file place it without a server-side move.

Through the app, in the test's transaction: its SAVEPOINT / RELEASE are the fast tier's and
are not counted."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from filestore.files.models import FileUpload, UploadStatus
from filestore.files.sniff import SNIFF_BYTES
from filestore.settings import Settings
from tests.files.test_listing_plan import statements
from tests.files.test_upload_states import form, form_type, objects_in, rows_of
from tests.fixtures.app import AsyncApi
from tests.fixtures.logs import capture_logs

CSV = b"name,email\n" + b"Ada,ada@example.com\n" * 100  # 2 KiB: whole within the head
PDF = b"%PDF-1.4\n% small\n" + b"x" * 4000


async def upload_events(admin: AsyncApi, file_id: int) -> list[dict[str, Any]]:
    params = {"file_id": file_id, "action": "file.uploaded"}
    response = await admin.get("/audit-events", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


class TestWholeFile:
    async def test_it_is_the_token_query_and_one_statement(
        self, admin_client: AsyncApi, fast_engine: AsyncEngine, monkeypatch: Any
    ) -> None:
        assert len(PDF) < SNIFF_BYTES
        with statements(fast_engine) as sent, capture_logs(monkeypatch) as logs:
            response = await admin_client.upload(PDF, "scan.pdf", content_type="application/pdf")
        assert response.status_code == 201, response.text
        assert len(sent) == 2, sent
        assert "FROM users" in sent[0]
        assert sent[1].lstrip().startswith("WITH file_row AS")
        assert "INSERT INTO audit_events" in sent[1]
        assert not any(s.strip().upper().startswith(("BEGIN", "UPDATE", "COMMIT")) for s in sent)
        body = response.json()
        assert body["upload_status"] == "completed"
        assert body["mime_type"] == "application/pdf"
        assert body["file_size"] == len(PDF)
        assert body["md5"] == hashlib.md5(PDF).hexdigest()
        assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
        # The answer is the stored row, as every read of it shows it.
        assert (await admin_client.get(f"/files/{body['id']}")).json() == body
        assert (await admin_client.get(f"/files/download/{body['id']}")).content == PDF
        [event] = await upload_events(admin_client, body["id"])
        assert event["action"] == "file.uploaded"
        assert event["details"] == {
            "filename": "scan.pdf",
            "bucket": body["bucket"],
            "size": len(PDF),
            "sha256": body["sha256"],
        }
        lines = [line for line in logs if line["event"] == "audit.file.uploaded"]
        assert [line["file_id"] for line in lines] == [body["id"]]
        assert [line["event"] for line in logs].count("file.stored") == 1

    async def test_refused_bytes_leave_a_rejected_row_and_were_never_stored(
        self, admin_client: AsyncApi, db_session: AsyncSession, fast_settings_base: Settings
    ) -> None:
        customer_id = int((await admin_client.new_customer())["id"])
        before = objects_in(fast_settings_base)
        boundary = uuid.uuid4().hex
        head, _ = form(boundary, customer_id, "a.csv")
        # The checksum comes after the file (curl's order): refused once the form has ended.
        wrong = hashlib.sha256(b"something else").hexdigest()
        late = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="checksum_sha256"\r\n\r\n'
            f"{wrong}\r\n--{boundary}--\r\n"
        )
        body = head + CSV + b"\r\n" + late.encode()
        refused = await admin_client.post(
            "/files/upload", content=body, headers=form_type(boundary)
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "checksum_mismatch"
        not_a_png = await admin_client.upload(CSV, "b.png", customer_id=customer_id)
        assert not_a_png.status_code == 415
        assert not_a_png.json()["code"] == "content_mismatch"
        not_a_docx = await admin_client.upload(b"PK\x03\x04" + b"\0" * 200, "c.docx")
        assert not_a_docx.status_code == 415, not_a_docx.text

        rows = await rows_of(db_session, customer_id)
        assert sorted((row.filename, row.upload_status, row.rejection_reason) for row in rows) == [
            ("a.csv", UploadStatus.rejected, "checksum"),
            ("b.png", UploadStatus.rejected, "type"),
        ]
        assert objects_in(fast_settings_base) == before
        for row in rows:
            assert (await admin_client.get(f"/files/{row.id}")).status_code == 404

    async def test_fields_after_the_file_place_it_without_a_move(
        self, admin_client: AsyncApi, monkeypatch: Any
    ) -> None:
        customer_id = int((await admin_client.new_customer())["id"])
        ticket_id = int((await admin_client.new_ticket(customer_id))["id"])
        boundary = uuid.uuid4().hex
        head, _ = form(boundary, customer_id, "c.csv")
        late = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="ticket_id"\r\n\r\n'
            f"{ticket_id}\r\n--{boundary}--\r\n"
        )
        with capture_logs(monkeypatch) as logs:
            response = await admin_client.post(
                "/files/upload",
                content=head + CSV + b"\r\n" + late.encode(),
                headers=form_type(boundary),
            )
        assert response.status_code == 201, response.text
        assert response.json()["bucket"] == "ticket-media"
        assert response.json()["ticket_id"] == ticket_id
        assert "file.rerouted" not in [line["event"] for line in logs]
        assert (await admin_client.get(f"/files/download/{response.json()['id']}")).content == CSV

    async def test_a_failed_row_write_leaves_no_object_and_no_row(
        self,
        admin_client: AsyncApi,
        db_session: AsyncSession,
        fast_settings_base: Settings,
    ) -> None:
        # A trigger, in the test's transaction, makes PostgreSQL refuse this one file's row.
        await db_session.execute(
            text(
                "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.filename = 'doomed.csv' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        await db_session.execute(
            text(
                "CREATE TRIGGER refuse_doomed BEFORE INSERT ON file_uploads "
                "FOR EACH ROW EXECUTE FUNCTION refuse_doomed()"
            )
        )
        await db_session.flush()
        before = objects_in(fast_settings_base)
        response = await admin_client.upload(CSV, "doomed.csv")
        assert response.status_code >= 500
        assert objects_in(fast_settings_base) == before
        found = await db_session.execute(
            select(FileUpload.id).where(FileUpload.filename == "doomed.csv")
        )
        assert found.all() == []


class TestUploadToken:
    """The upload reads its user as a Core row (`deps.StandalonePrincipal`): revocation still
    refuses the token at once, before a byte is stored."""

    async def test_logout_and_deactivation_refuse_the_upload_at_once(
        self, admin_client: AsyncApi, fast_settings_base: Settings
    ) -> None:
        for revoke in ("logout", "deactivate"):
            user, password = await admin_client.new_user("staff")
            response = await admin_client.client.post(
                "/auth/login", data={"username": user["username"], "password": password}
            )
            assert response.status_code == 200, response.text
            tokens = response.json()
            staff = AsyncApi(admin_client.client, tokens["access_token"])
            accepted = await staff.upload(CSV, "before.csv")
            assert accepted.status_code == 201, accepted.text
            assert accepted.json()["uploaded_by"] == user["id"]
            if revoke == "logout":
                out = await admin_client.client.post(
                    "/auth/logout", json={"refresh_token": tokens["refresh_token"]}
                )
                assert out.status_code == 204, out.text
            else:
                changed = await admin_client.patch(
                    f"/users/{user['id']}", json={"is_active": False}
                )
                assert changed.status_code == 200, changed.text
            before = objects_in(fast_settings_base)
            refused = await staff.upload(CSV, "after.csv")
            assert refused.status_code == 401, (revoke, refused.text)
            assert refused.json()["code"] == "invalid_token"
            assert objects_in(fast_settings_base) == before
