"""The last byte of a tus upload re-checks the uploader: one deactivated (or who lost sight of
the customer) since creation loses the upload, and no file row appears. Fast tier."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from filestore.auth.models import User
from filestore.errors import NotFound
from filestore.files.models import FileUpload
from filestore.files.tus import patch as tus_patch
from filestore.files.tus import running
from filestore.files.tus.models import TusStatus, TusUpload
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage
from tests.files.tus.client import TUS, Tus, csv_bytes
from tests.fixtures.app import AsyncApi, bound_sessionmaker


async def file_rows(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(FileUpload)) or 0)


class TestRecheckAtCompletion:
    async def test_user_deactivated_meanwhile_loses_the_upload(
        self,
        admin_client: AsyncApi,
        db_connection: AsyncConnection,
        db_session: AsyncSession,
        fast_settings_base: Settings,
    ) -> None:
        user_json, password = await admin_client.new_user("staff")
        staff = Tus(await admin_client.login(user_json["username"], password))
        data = csv_bytes(3000)
        path = await staff.new(len(data))
        assert (await staff.patch(path, 0, data[:1000])).status_code == 204
        # The request that carries the last byte was authenticated a moment before the admin
        # deactivated the account.
        user = await db_session.get(User, user_json["id"])
        assert user is not None
        changed = await admin_client.patch(f"/users/{user.id}", json={"is_active": False})
        assert changed.status_code == 200, changed.text
        rows_before = await file_rows(db_session)
        ctx = tus_patch.TusContext(
            settings=fast_settings_base,
            storage=ObjectStorage(fast_settings_base),
            sessionmaker=bound_sessionmaker(db_connection),
            user=user,
            now=datetime.now(UTC),
        )

        async def body() -> AsyncIterator[bytes]:
            yield data[1000:]

        with pytest.raises(NotFound):
            await tus_patch.append(
                ctx,
                upload_id=path.rsplit("/", 1)[1],
                offset=1000,
                length=None,
                checksum=None,
                content_length=len(data) - 1000,
                body=body(),
            )
        upload = await db_session.get(TusUpload, path.rsplit("/", 1)[1], populate_existing=True)
        assert upload is not None
        assert upload.status is TusStatus.rejected
        assert await file_rows(db_session) == rows_before
        stored = Path(fast_settings_base.objects_dir) / upload.bucket / upload.object_key
        assert not stored.exists()
        # And the account's own token stopped working at once.
        assert (await staff.head(path)).status_code == 401


class TestLocalStore:
    async def test_delete_removes_the_partial_file_at_once(
        self, admin_client: AsyncApi, db_session: AsyncSession, fast_settings_base: Settings
    ) -> None:
        tus = Tus(admin_client)
        path = await tus.new(3000)
        assert (await tus.patch(path, 0, csv_bytes(1000))).status_code == 204
        upload = await db_session.get(TusUpload, path.rsplit("/", 1)[1])
        assert upload is not None
        partial = Path(fast_settings_base.objects_dir) / upload.bucket / ".tus" / upload.id
        assert partial.stat().st_size == 1000
        assert (await admin_client.delete(path, headers=TUS)).status_code == 204
        assert not partial.exists()

    async def test_bytes_of_a_refused_patch_do_not_count(
        self, admin_client: AsyncApi, db_session: AsyncSession
    ) -> None:
        """A 413 leaves bytes past the offset in the partial file; the next PATCH overwrites
        them, and the stored file is exactly what the client sent."""
        tus = Tus(admin_client)
        data = csv_bytes(3000)
        path = await tus.new(len(data))
        assert (await tus.patch(path, 0, data[:1000])).status_code == 204

        async def too_long() -> AsyncIterator[bytes]:
            yield b"Z" * 1500  # fits: written to the partial file
            yield b"Z" * 1000  # goes past the length: the request is refused

        assert (await tus.patch(path, 1000, too_long())).status_code == 413
        assert await tus.offset(path) == 1000
        done = await tus.patch(path, 1000, data[1000:])
        assert done.status_code == 204
        got = await admin_client.get(f"/files/download/{done.headers['Filestore-File-Id']}")
        assert got.content == data


class TestReadBack:
    """When this process did not hash every byte (another process took a request, or it
    restarted), verification reads the stored object back: same result."""

    async def test_read_back_gives_the_same_hashes(self, admin_client: AsyncApi) -> None:
        tus = Tus(admin_client)
        data = csv_bytes(3000)
        path = await tus.new(len(data))
        assert (await tus.patch(path, 0, data[:1000])).status_code == 204
        running._entries.clear()  # as if the next request reached another process
        done = await tus.patch(path, 1000, data[1000:])
        assert done.status_code == 204, done.text
        file = (await admin_client.get(f"/files/{done.headers['Filestore-File-Id']}")).json()
        assert file["sha256"] == hashlib.sha256(data).hexdigest()
        assert file["md5"] == hashlib.md5(data).hexdigest()
        assert file["mime_type"] == "text/csv"

    async def test_read_back_still_sniffs(self, admin_client: AsyncApi) -> None:
        tus = Tus(admin_client)
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 3000
        path = await tus.new(len(png), {"filename": "fake.csv"})
        assert (await tus.patch(path, 0, png[:1000])).status_code == 204
        running._entries.clear()
        refused = await tus.patch(path, 1000, png[1000:])
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "content_mismatch"
        assert (await tus.head(path)).status_code == 410
