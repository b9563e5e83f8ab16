"""Unfinished tus uploads and the cleanup sweep (S3, live): a live upload's multipart upload and
tail object survive the sweep however old they are, an expired one loses both and its row, and
DELETE removes them at once."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import httpx
import pytest

from tests.conftest import Postgres, ServerFactory
from tests.files.tus.client import TUS, metadata_header
from tests.fixtures.inspect import StoreInspector
from tests.fixtures.live import LiveServer, production_env
from tests.fixtures.servers import SeaweedFS, s3_env
from tests.ops.test_cleanup import GRACE_SECONDS, run_cleanup, sql

MiB = 1024 * 1024
SIZE = 20 * MiB
PART = 6 * MiB  # a request of 5 MiB or more is all parts
FIRST = 9 * MiB + 5  # a part, then a tail: a second request of less than 5 MiB


@pytest.fixture(scope="module")
def tus_sweep_server(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
) -> LiveServer:
    prefix = f"tussweep{uuid.uuid4().hex[:6]}"
    env = production_env(postgres.create_database("filestore_tus_sweep"))
    env.update(s3_env(seaweed))
    env.update(
        {
            f"MINIO_BUCKET_{role}": f"{prefix}-{role.lower().replace('_', '-')}"
            for role in ("CUSTOMER_UPLOADS", "TICKET_MEDIA", "CSV_IMPORTS", "BACKUPS", "TEMP")
        }
    )
    env["ORPHAN_GRACE_SECONDS"] = str(GRACE_SECONDS)
    env["FILE_CLEANUP_INTERVAL_SECONDS"] = "86400"
    env["MAX_FILE_SIZE"] = str(SIZE)
    return start_filestore(env)


class Upload:
    def __init__(self, server: LiveServer, store: StoreInspector, data: bytes) -> None:
        self.server = server
        self.store = store
        self.data = data
        self.headers = {"Authorization": f"Bearer {server.admin().token}", **TUS}
        created = httpx.post(
            f"{server.base_url}/files/tus",
            headers={
                **self.headers,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": metadata_header({"filename": "sweep.csv"}),
            },
        )
        assert created.status_code == 201, created.text
        self.url = created.headers["Location"]
        self.id = self.url.rsplit("/", 1)[1]

    def patch(self, offset: int, end: int) -> httpx.Response:
        return httpx.patch(
            self.url,
            headers={
                **self.headers,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
            },
            content=self.data[offset:end],
            timeout=60,
        )

    def start(self) -> None:
        """Store a part and a tail: two requests, the second too short to be a part."""
        assert self.patch(0, PART).status_code == 204
        assert self.temp_objects(self.store) == set()  # 6 MiB: one part, no tail
        assert self.patch(PART, FIRST).status_code == 204

    def head(self) -> httpx.Response:
        return httpx.head(self.url, headers=self.headers)

    def temp_objects(self, store: StoreInspector) -> set[str]:
        return {key for key in store.objects() if f"/.tus/{self.id}/" in key}


def csv_data(size: int) -> bytes:
    return (b"id,v\n" + os.urandom(size).hex().encode())[:size]


class TestSweep:
    def test_live_upload_survives_expired_one_is_removed(
        self, tus_sweep_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        store = StoreInspector(tus_sweep_server, seaweed)
        kept = Upload(tus_sweep_server, store, csv_data(SIZE))
        lapsed = Upload(tus_sweep_server, store, csv_data(SIZE))
        for upload in (kept, lapsed):
            upload.start()
            assert len(upload.temp_objects(store)) == 1  # the tail
        assert len(store.multipart_uploads()) == 2
        time.sleep(GRACE_SECONDS + 1)  # older than the grace period: would be swept if orphans

        sql(
            tus_sweep_server,
            "UPDATE tus_uploads SET expires_at = now() - interval '1 second' WHERE id = %s",
            (lapsed.id,),
        )
        result = run_cleanup(tus_sweep_server)
        assert result.returncode == 0, result.stderr

        assert lapsed.head().status_code == 404
        assert lapsed.temp_objects(store) == set()
        assert sql(tus_sweep_server, "SELECT 1 FROM tus_uploads WHERE id = %s", (lapsed.id,)) == []
        assert len(store.multipart_uploads()) == 1

        assert int(kept.head().headers["Upload-Offset"]) == FIRST
        done = kept.patch(FIRST, SIZE)
        assert done.status_code == 204, done.text
        file = tus_sweep_server.admin().get(f"/files/{done.headers['Filestore-File-Id']}").json()
        assert file["sha256"] == hashlib.sha256(kept.data).hexdigest()
        assert kept.temp_objects(store) == set()
        assert store.multipart_uploads() == frozenset()

    def test_delete_removes_parts_and_tail_at_once(
        self, tus_sweep_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        store = StoreInspector(tus_sweep_server, seaweed)
        before = store.multipart_uploads()
        upload = Upload(tus_sweep_server, store, csv_data(SIZE))
        upload.start()
        assert len(upload.temp_objects(store)) == 1  # the tail
        assert len(store.multipart_uploads() - before) == 1
        deleted = httpx.delete(upload.url, headers=upload.headers)
        assert deleted.status_code == 204
        assert store.multipart_uploads() == before
        assert upload.temp_objects(store) == set()
        assert upload.head().status_code == 404
