"""Small files (up to `download.WHOLE_BODY_MAX`) are read whole and sent as one body: same
bytes and headers as the streamed path, and a missing object is still 404 JSON. Through the
app on the local store, one transaction."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.files.download import WHOLE_BODY_MAX
from filestore.files.models import FileUpload
from tests.fixtures.app import AsyncApi

SAME_HEADERS = (
    "content-type",
    "content-disposition",
    "accept-ranges",
    "x-content-type-options",
    "content-security-policy",
    "cache-control",
)


async def uploaded(api: AsyncApi, content: bytes, name: str) -> int:
    response = await api.upload(content, name, content_type="text/csv")
    assert response.status_code == 201, response.text
    file_id: int = response.json()["id"]
    return file_id


class TestSmallDownloads:
    async def test_small_and_streamed_files_answer_alike(self, admin_client: AsyncApi) -> None:
        small = b"name,email\n" + b"a,a@example.com\n" * 100
        big = b"name,email\n" + b"b,b@example.com\n" * (WHOLE_BODY_MAX // 16 + 10)
        assert len(small) <= WHOLE_BODY_MAX < len(big)
        answers = {}
        for content in (small, big):
            file_id = await uploaded(admin_client, content, "list.csv")
            response = await admin_client.get(f"/files/download/{file_id}")
            assert response.status_code == 200
            assert response.content == content
            assert response.headers["content-length"] == str(len(content))
            assert response.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
            answers[len(content)] = {h: response.headers.get(h) for h in SAME_HEADERS}
        first, second = answers.values()
        assert first == second
        assert first["content-type"] == "text/csv; charset=utf-8"

    async def test_a_range_of_a_small_file_is_still_a_206(self, admin_client: AsyncApi) -> None:
        file_id = await uploaded(admin_client, b"name,email\nAda,ada@example.com\n", "r.csv")
        response = await admin_client.get(
            f"/files/download/{file_id}", headers={"Range": "bytes=0-3"}
        )
        assert response.status_code == 206
        assert response.content == b"name"

    async def test_a_missing_small_object_is_404_json(
        self, admin_client: AsyncApi, db_session: AsyncSession, fast_app: FastAPI
    ) -> None:
        file_id = await uploaded(admin_client, b"name,email\nAda,ada@example.com\n", "m.csv")
        row = await db_session.get(FileUpload, file_id)
        assert row is not None
        await fast_app.state.filestore.storage.delete(row.bucket, row.object_key)

        response = await admin_client.get(f"/files/download/{file_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "file_content_missing"
