"""Downloads of small files from the in-process cache (`storage.cache`, DOWNLOAD_CACHE_BYTES):
a hit serves the same bytes without the store, and changes nothing else: the token and the
file's row are checked first (a deleted or hidden file is 404 with its bytes cached), and every
download is audited. Through the app on the local store, in the test's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.files.download import WHOLE_BODY_MAX
from filestore.files.models import FileUpload
from filestore.storage.cache import ObjectCache
from tests.fixtures.app import AsyncApi

CSV = b"name,email\nAda,ada@example.com\n"


@pytest.fixture
def cache(fast_app: FastAPI, app_client: AsyncApi) -> Iterator[ObjectCache]:
    """A cache on the app's state for this test (the fast tier runs without one)."""
    state = fast_app.state.filestore
    state.object_cache = ObjectCache(max_bytes=1 << 20, max_object=WHOLE_BODY_MAX)
    yield state.object_cache
    state.object_cache = None


async def new_file(admin: AsyncApi, content: bytes = CSV) -> tuple[int, int]:
    customer_id: int = (await admin.new_customer())["id"]
    response = await admin.upload(content, "a.csv", customer_id=customer_id)
    assert response.status_code == 201, response.text
    return customer_id, response.json()["id"]


async def drop_object(db_session: AsyncSession, fast_app: FastAPI, file_id: int) -> None:
    """Delete the stored object behind the API's back: only the cache can serve it now."""
    row = await db_session.get(FileUpload, file_id)
    assert row is not None
    await fast_app.state.filestore.storage.delete(row.bucket, row.object_key)


async def downloads(admin: AsyncApi, file_id: int) -> list[dict[str, Any]]:
    response = await admin.get(
        "/audit-events", params={"file_id": file_id, "action": "file.downloaded"}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


class TestCachedDownloads:
    async def test_a_second_download_is_served_from_the_cache_and_audited(
        self,
        admin_client: AsyncApi,
        cache: ObjectCache,
        db_session: AsyncSession,
        fast_app: FastAPI,
    ) -> None:
        _, file_id = await new_file(admin_client)
        first = await admin_client.get(f"/files/download/{file_id}")
        assert first.status_code == 200
        assert len(cache) == 1
        await drop_object(db_session, fast_app, file_id)
        second = await admin_client.get(f"/files/download/{file_id}")
        assert second.status_code == 200
        assert second.content == first.content == CSV
        without_id = [
            {k: v for k, v in r.headers.items() if k != "x-request-id"} for r in (first, second)
        ]
        assert without_id[0] == without_id[1]
        assert len(await downloads(admin_client, file_id)) == 2

    async def test_a_deleted_file_is_404_though_its_bytes_are_cached(
        self, admin_client: AsyncApi, cache: ObjectCache
    ) -> None:
        _, file_id = await new_file(admin_client)
        assert (await admin_client.get(f"/files/download/{file_id}")).status_code == 200
        assert (await admin_client.delete(f"/files/{file_id}")).status_code == 204
        gone = await admin_client.get(f"/files/download/{file_id}")
        assert gone.status_code == 404
        assert gone.json()["code"] == "file_not_found"
        assert len(await downloads(admin_client, file_id)) == 1

    async def test_a_caller_who_may_not_see_it_gets_404_though_it_is_cached(
        self, admin_client: AsyncApi, cache: ObjectCache
    ) -> None:
        _, file_id = await new_file(admin_client)
        assert (await admin_client.get(f"/files/download/{file_id}")).status_code == 200
        other = (await admin_client.new_customer())["id"]
        customer = await admin_client.user_api("customer", customer_id=other)
        refused = await customer.get(f"/files/download/{file_id}")
        assert refused.status_code == 404
        assert refused.json()["code"] == "file_not_found"

    async def test_ranges_and_large_files_still_come_from_the_store(
        self,
        admin_client: AsyncApi,
        cache: ObjectCache,
        db_session: AsyncSession,
        fast_app: FastAPI,
    ) -> None:
        big = b"name,email\n" + b"x" * WHOLE_BODY_MAX
        _, big_id = await new_file(admin_client, big)
        assert (await admin_client.get(f"/files/download/{big_id}")).content == big
        _, small_id = await new_file(admin_client)
        part = await admin_client.get(f"/files/download/{small_id}", headers={"Range": "bytes=0-3"})
        assert part.status_code == 206
        assert len(cache) == 0
        await drop_object(db_session, fast_app, big_id)
        missing = await admin_client.get(f"/files/download/{big_id}")
        assert missing.status_code == 404
        assert missing.json()["code"] == "file_content_missing"
