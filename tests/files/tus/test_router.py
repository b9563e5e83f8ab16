"""`/files/tus`: the tus 1.0.0 protocol rules, in the fast tier (app in process, local store,
one rolled-back transaction per test)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.files.tus.models import TusUpload
from filestore.settings import Settings
from tests.files.tus.client import TUS, Tus, checksum_header, csv_bytes, metadata_header, path_of
from tests.fixtures.app import FAST_MAX_FILE_SIZE, AsyncApi


@pytest.fixture
def tus(admin_client: AsyncApi) -> Tus:
    return Tus(admin_client)


def upload_id(path: str) -> str:
    return path.rsplit("/", 1)[1]


def assert_error(response: object, status: int, code: str | None = None) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "code"}, body
    if code is not None:
        assert body["code"] == code, body
    assert response.headers.get("Tus-Resumable") == "1.0.0"


class TestDiscovery:
    async def test_options_lists_version_extensions_and_max_size(
        self, app_client: AsyncApi
    ) -> None:
        response = await app_client.request("OPTIONS", "/files/tus")
        assert response.status_code == 204
        assert response.headers["Tus-Version"] == "1.0.0"
        assert response.headers["Tus-Max-Size"] == str(FAST_MAX_FILE_SIZE)
        extensions = set(response.headers["Tus-Extension"].split(","))
        assert extensions == {
            "creation",
            "creation-with-upload",
            "creation-defer-length",
            "termination",
            "expiration",
            "checksum",
        }
        assert set(response.headers["Tus-Checksum-Algorithm"].split(",")) == {
            "md5",
            "sha1",
            "sha256",
        }

    async def test_without_tus_resumable_412(self, tus: Tus) -> None:
        response = await tus.create(10, headers={"Tus-Resumable": "0.2.2"})
        assert_error(response, 412, "tus_version_unsupported")
        assert response.headers["Tus-Version"] == "1.0.0"

    async def test_without_token_401_with_tus_header(self, app_client: AsyncApi) -> None:
        response = await Tus(app_client).create(10)
        assert_error(response, 401)


class TestUpload:
    async def test_chunks_make_the_same_file_as_a_form_upload(
        self, tus: Tus, admin_client: AsyncApi
    ) -> None:
        customer = await admin_client.new_customer()
        data = csv_bytes(3 * 1024 * 1024 + 17)
        metadata = {
            "filename": "report.csv",
            "file_type": "csv",
            "customer_id": str(customer["id"]),
            "metadata": '{"source": "phone"}',
            "checksum_sha256": hashlib.sha256(data).hexdigest(),
        }
        stored = await tus.upload(data, metadata, chunk=1024 * 1024)
        assert stored["sha256"] == hashlib.sha256(data).hexdigest()
        assert stored["md5"] == hashlib.md5(data).hexdigest()
        assert stored["file_size"] == len(data)
        assert stored["filename"] == "report.csv"
        assert stored["customer_id"] == customer["id"]
        assert stored["metadata"] == {"source": "phone"}
        assert stored["upload_status"] == "completed"
        form = await admin_client.upload(
            data, "report.csv", file_type="csv", customer_id=customer["id"]
        )
        assert set(form.json()) == set(stored)
        listing = await admin_client.get(f"/files/customer/{customer['id']}")
        assert stored["id"] in {f["id"] for f in listing.json()}
        downloaded = await admin_client.get(f"/files/download/{stored['id']}")
        assert downloaded.content == data

    async def test_get_after_completion_returns_the_file_json(
        self, tus: Tus, admin_client: AsyncApi
    ) -> None:
        data = csv_bytes(1000)
        path = await tus.new(len(data))
        patched = await tus.patch(path, 0, data)
        assert patched.status_code == 204
        state = (await admin_client.get(path)).json()
        assert state["status"] == "completed"
        assert state["file"]["id"] == int(patched.headers["Filestore-File-Id"])
        assert state["file"]["sha256"] == hashlib.sha256(data).hexdigest()
        head = await tus.head(path)
        assert head.headers["Filestore-File-Id"] == patched.headers["Filestore-File-Id"]
        assert head.headers["Upload-Offset"] == str(len(data))

    async def test_head_says_offset_length_expiry(self, tus: Tus) -> None:
        path = await tus.new(5000)
        await tus.patch(path, 0, csv_bytes(1200))
        head = await tus.head(path)
        assert head.status_code == 200
        assert head.headers["Upload-Offset"] == "1200"
        assert head.headers["Upload-Length"] == "5000"
        assert head.headers["Cache-Control"] == "no-store"
        expires = datetime.strptime(head.headers["Upload-Expires"], "%a, %d %b %Y %H:%M:%S GMT")
        ahead = expires.replace(tzinfo=UTC) - datetime.now(UTC)
        assert timedelta(hours=23) < ahead <= timedelta(hours=24)

    async def test_creation_with_upload(self, tus: Tus) -> None:
        data = csv_bytes(2000)
        response = await tus.create(len(data), body=data[:700])
        assert response.status_code == 201, response.text
        assert response.headers["Upload-Offset"] == "700"
        path = path_of(response)
        done = await tus.patch(path, 700, data[700:])
        assert done.status_code == 204
        assert "Filestore-File-Id" in done.headers

    async def test_deferred_length_given_later(self, tus: Tus, admin_client: AsyncApi) -> None:
        data = csv_bytes(3000)
        response = await tus.create(None)
        assert response.status_code == 201
        path = path_of(response)
        assert (await tus.head(path)).headers["Upload-Defer-Length"] == "1"
        assert (await tus.patch(path, 0, data[:1000])).status_code == 204
        done = await tus.patch(path, 1000, data[1000:], headers={"Upload-Length": "3000"})
        assert done.status_code == 204, done.text
        file = (await admin_client.get(f"/files/{done.headers['Filestore-File-Id']}")).json()
        assert file["sha256"] == hashlib.sha256(data).hexdigest()

    async def test_bodies_over_the_json_body_limit_pass(
        self, tus: Tus, fast_settings_base: Settings
    ) -> None:
        """PATCH and creation-with-upload stream like the form upload: MAX_JSON_BODY_SIZE is
        not theirs to obey (MAX_FILE_SIZE and Upload-Length are)."""
        big = fast_settings_base.max_json_body_size + 1024
        data = csv_bytes(2 * big)
        created = await tus.create(len(data), body=data[:big])
        assert created.status_code == 201, created.text
        done = await tus.patch(path_of(created), big, data[big:])
        assert done.status_code == 204, done.text

    @pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
    async def test_matching_checksum_is_accepted(self, tus: Tus, algorithm: str) -> None:
        data = csv_bytes(1500)
        path = await tus.new(len(data))
        response = await tus.patch(
            path, 0, data, headers={"Upload-Checksum": checksum_header(algorithm, data)}
        )
        assert response.status_code == 204, response.text


class TestBadInput:
    async def test_wrong_offset_409_names_the_current_one(self, tus: Tus) -> None:
        path = await tus.new(3000)
        await tus.patch(path, 0, csv_bytes(1000))
        response = await tus.patch(path, 500, b"x" * 100)
        assert_error(response, 409, "offset_mismatch")
        assert response.headers["Upload-Offset"] == "1000"
        assert await tus.offset(path) == 1000

    async def test_without_offset_octet_stream_415(self, tus: Tus) -> None:
        path = await tus.new(3000)
        response = await tus.patch(
            path, 0, csv_bytes(100), headers={"Content-Type": "application/octet-stream"}
        )
        assert_error(response, 415)
        assert await tus.offset(path) == 0

    async def test_past_declared_length_413_keeps_nothing(self, tus: Tus) -> None:
        data = csv_bytes(2000)
        path = await tus.new(2000)
        assert (await tus.patch(path, 0, data[:1500])).status_code == 204
        response = await tus.patch(path, 1500, data[1500:] + b"extra")
        assert_error(response, 413, "upload_length_exceeded")
        assert await tus.offset(path) == 1500

    async def test_past_declared_length_chunked_413_keeps_nothing(self, tus: Tus) -> None:
        path = await tus.new(2000)

        async def body() -> AsyncIterator[bytes]:
            yield csv_bytes(1500)
            yield b"y" * 1000

        response = await tus.patch(path, 0, body())
        assert_error(response, 413, "upload_length_exceeded")
        assert await tus.offset(path) == 0

    @pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
    async def test_checksum_mismatch_460_keeps_nothing(self, tus: Tus, algorithm: str) -> None:
        data = csv_bytes(3000)
        path = await tus.new(len(data))
        assert (await tus.patch(path, 0, data[:1000])).status_code == 204
        wrong = checksum_header(algorithm, b"something else")
        response = await tus.patch(path, 1000, data[1000:], headers={"Upload-Checksum": wrong})
        assert_error(response, 460, "checksum_mismatch")
        assert await tus.offset(path) == 1000
        done = await tus.patch(path, 1000, data[1000:])
        assert done.status_code == 204
        file = (await tus.api.get(f"/files/{done.headers['Filestore-File-Id']}")).json()
        assert file["sha256"] == hashlib.sha256(data).hexdigest()

    async def test_unknown_checksum_algorithm_400(self, tus: Tus) -> None:
        path = await tus.new(100)
        response = await tus.patch(path, 0, b"a" * 100, headers={"Upload-Checksum": "crc32 AAAA"})
        assert_error(response, 400, "checksum_algorithm_unsupported")

    async def test_other_users_upload_404(self, tus: Tus, admin_client: AsyncApi) -> None:
        path = await tus.new(3000)
        staff = Tus(await admin_client.user_api("staff"))
        assert (await staff.head(path)).status_code == 404
        assert_error(await staff.patch(path, 0, csv_bytes(10)), 404, "upload_not_found")
        assert_error(await staff.api.delete(path, headers=TUS), 404)
        assert await tus.offset(path) == 0

    async def test_terminated_upload_404(self, tus: Tus) -> None:
        path = await tus.new(3000)
        await tus.patch(path, 0, csv_bytes(1000))
        deleted = await tus.api.delete(path, headers=TUS)
        assert deleted.status_code == 204
        assert (await tus.head(path)).status_code == 404
        assert_error(await tus.patch(path, 1000, csv_bytes(10)), 404, "upload_not_found")

    async def test_expired_upload_404(self, tus: Tus, db_session: AsyncSession) -> None:
        path = await tus.new(3000)
        await db_session.execute(
            update(TusUpload)
            .where(TusUpload.id == upload_id(path))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        assert (await tus.head(path)).status_code == 404
        assert_error(await tus.patch(path, 0, csv_bytes(10)), 404, "upload_not_found")

    async def test_malformed_metadata_400(self, tus: Tus) -> None:
        response = await tus.create(10, headers={"Upload-Metadata": "filename !!notbase64"})
        assert_error(response, 400, "invalid_metadata_header")

    async def test_both_or_neither_length_400(self, tus: Tus) -> None:
        response = await tus.create(10, headers={"Upload-Defer-Length": "1"})
        assert_error(response, 400, "invalid_length")


class TestSameRulesAsTheForm:
    async def test_over_max_file_size_413(self, tus: Tus) -> None:
        assert_error(await tus.create(FAST_MAX_FILE_SIZE + 1), 413, "file_too_large")

    async def test_empty_file_422(self, tus: Tus) -> None:
        assert_error(await tus.create(0), 422, "empty_file")

    async def test_extension_not_allowed_415(self, tus: Tus) -> None:
        response = await tus.create(10, {"filename": "run.exe"})
        assert_error(response, 415, "file_type_not_allowed")

    async def test_no_filename_422(self, tus: Tus) -> None:
        assert_error(await tus.create(10, {}), 422, "file_required")

    async def test_unknown_field_422(self, tus: Tus) -> None:
        response = await tus.create(10, {"filename": "a.csv", "owner": "me"})
        assert_error(response, 422)

    async def test_client_hints_are_ignored(self, tus: Tus) -> None:
        hints = {"filename": "a.csv", "filetype": "text/csv", "relativePath": "null"}
        assert (await tus.create(10, hints)).status_code == 201

    async def test_unknown_customer_404(self, tus: Tus) -> None:
        response = await tus.create(10, {"filename": "a.csv", "customer_id": "999999999"})
        assert_error(response, 404, "customer_not_found")

    async def test_backup_by_staff_403(self, admin_client: AsyncApi) -> None:
        staff = Tus(await admin_client.user_api("staff"))
        response = await staff.create(10, {"filename": "a.csv", "file_type": "backup"})
        assert_error(response, 403, "forbidden_backup")

    async def test_customer_for_another_customer_403(self, admin_client: AsyncApi) -> None:
        mine = await admin_client.new_customer()
        other = await admin_client.new_customer()
        customer = Tus(await admin_client.user_api("customer", mine["id"]))
        response = await customer.create(10, {"filename": "a.csv", "customer_id": str(other["id"])})
        assert_error(response, 404, "customer_not_found")

    async def test_content_not_matching_extension_rejected_at_completion(
        self, tus: Tus, admin_client: AsyncApi
    ) -> None:
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000
        path = await tus.new(len(png), {"filename": "fake.pdf"})
        response = await tus.patch(path, 0, png)
        assert_error(response, 422, "content_mismatch")
        state = (await admin_client.get(path)).json()
        assert state["status"] == "rejected"
        assert state["rejection"]["code"] == response.json()["code"]
        assert (await tus.head(path)).status_code == 410

    async def test_wrong_declared_sha256_rejected_at_completion(self, tus: Tus) -> None:
        data = csv_bytes(1000)
        path = await tus.new(len(data), {"filename": "a.csv", "checksum_sha256": "0" * 64})
        assert_error(await tus.patch(path, 0, data), 422, "checksum_mismatch")


class TestLock:
    async def test_second_patch_while_one_runs_423(self, tus: Tus) -> None:
        data = csv_bytes(4000)
        path = await tus.new(len(data))
        started, go_on = asyncio.Event(), asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            yield data[:1000]
            started.set()
            await go_on.wait()
            yield data[1000:2000]

        first = asyncio.create_task(tus.patch(path, 0, slow()))
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(0.2)
        second = await tus.patch(path, 0, data[:500])
        assert_error(second, 423, "upload_locked")
        go_on.set()
        assert (await first).status_code == 204
        assert await tus.offset(path) == 2000


async def test_expiry_hours_setting(fast_settings_base: Settings) -> None:
    assert fast_settings_base.tus_upload_expiry_hours == 24


DRAFT = {"Upload-Draft-Interop-Version": "6"}
PARTIAL = {"Content-Type": "application/partial-upload"}


class TestIetfDraft:
    """The IETF draft as tus-js-client speaks it (`protocol: "ietf-draft-05"`), on the same
    upload state: other headers, same rules."""

    async def test_upload_with_draft_headers(self, admin_client: AsyncApi) -> None:
        data = csv_bytes(3000)
        created = await admin_client.post(
            "/files/tus",
            headers={
                **DRAFT,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": metadata_header({"filename": "draft.csv"}),
                "Upload-Complete": "?0",
            },
        )
        assert created.status_code == 201, created.text
        path = path_of(created)
        first = await admin_client.patch(
            path,
            headers={**DRAFT, **PARTIAL, "Upload-Offset": "0", "Upload-Complete": "?0"},
            content=data[:1000],
        )
        assert first.status_code == 204, first.text
        head = await admin_client.request("HEAD", path, headers=DRAFT)
        assert head.headers["Upload-Offset"] == "1000"
        assert head.headers["Upload-Complete"] == "?0"
        last = await admin_client.patch(
            path,
            headers={**DRAFT, **PARTIAL, "Upload-Offset": "1000", "Upload-Complete": "?1"},
            content=data[1000:],
        )
        assert last.status_code == 204, last.text
        file = (await admin_client.get(f"/files/{last.headers['Filestore-File-Id']}")).json()
        assert file["sha256"] == hashlib.sha256(data).hexdigest()

    async def test_upload_complete_fixes_a_deferred_length(self, admin_client: AsyncApi) -> None:
        data = csv_bytes(2500)
        created = await admin_client.post(
            "/files/tus",
            headers={
                **DRAFT,
                "Upload-Defer-Length": "1",
                "Upload-Metadata": metadata_header({"filename": "draft.csv"}),
            },
        )
        path = path_of(created)
        await admin_client.patch(
            path, headers={**DRAFT, **PARTIAL, "Upload-Offset": "0"}, content=data[:1000]
        )
        last = await admin_client.patch(
            path,
            headers={**DRAFT, **PARTIAL, "Upload-Offset": "1000", "Upload-Complete": "?1"},
            content=data[1000:],
        )
        assert last.status_code == 204, last.text
        file = (await admin_client.get(f"/files/{last.headers['Filestore-File-Id']}")).json()
        assert file["file_size"] == len(data)

    async def test_complete_before_the_declared_length_400(self, admin_client: AsyncApi) -> None:
        tus = Tus(admin_client)
        path = await tus.new(3000)
        response = await admin_client.patch(
            path,
            headers={**DRAFT, **PARTIAL, "Upload-Offset": "0", "Upload-Complete": "?1"},
            content=csv_bytes(1000),
        )
        assert_error(response, 400, "invalid_length")
        assert await tus.offset(path) == 0

    async def test_neither_dialect_412(self, admin_client: AsyncApi) -> None:
        response = await admin_client.post(
            "/files/tus", headers={"Upload-Draft-Interop-Version": "3", "Upload-Length": "10"}
        )
        assert_error(response, 412, "tus_version_unsupported")

    async def test_partial_upload_type_only_in_the_draft(self, tus: Tus) -> None:
        path = await tus.new(3000)
        response = await tus.patch(path, 0, csv_bytes(10), headers=PARTIAL)
        assert_error(response, 415)


class TestIdleClient:
    async def test_a_silent_client_keeps_its_bytes_and_frees_the_upload(
        self, tus: Tus, monkeypatch: pytest.MonkeyPatch, fast_settings_base: Settings
    ) -> None:
        """No byte for UPLOAD_IDLE_TIMEOUT_SECONDS ends the request as a disconnect would: what
        arrived is kept and the next request is not locked out."""
        monkeypatch.setattr(fast_settings_base, "upload_idle_timeout_seconds", 0.5)
        data = csv_bytes(3000)
        path = await tus.new(len(data))
        never = asyncio.Event()

        async def stalls() -> AsyncIterator[bytes]:
            yield data[:1000]
            await never.wait()
            yield data[1000:]

        answered = await asyncio.wait_for(tus.patch(path, 0, stalls()), 10)
        assert answered.status_code == 204
        assert await tus.offset(path) == 1000
        done = await tus.patch(path, 1000, data[1000:])
        assert done.status_code == 204, done.text
