"""`ObjectStorage` says "unavailable" only for an outage: a store that cannot be reached.

Real stores, no mocks: a port nobody listens on (connection refused), SeaweedFS with a wrong
secret key (403, a misconfiguration), and a missing object (not found).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from obstore.exceptions import PermissionDeniedError

from filestore.settings import Settings
from filestore.storage.errors import StorageUnavailable
from filestore.storage.store import ObjectStorage
from tests.fixtures.inspect import minio_client
from tests.fixtures.servers import SeaweedFS, free_port


def s3_storage(endpoint: str, *, access_key: str, secret_key: str, tmp_path: Path) -> ObjectStorage:
    return ObjectStorage(
        Settings(
            filestore_data_dir=tmp_path,
            minio_endpoint=endpoint,
            minio_access_key=access_key,
            minio_secret_key=secret_key,
            storage_timeout_seconds=2,
        )
    )


async def one_chunk() -> AsyncIterator[memoryview]:
    yield memoryview(b"hello")


class TestStoreDown:
    async def test_every_operation_is_storage_unavailable(self, tmp_path: Path) -> None:
        storage = s3_storage(
            f"127.0.0.1:{free_port()}", access_key="k", secret_key="s" * 20, tmp_path=tmp_path
        )
        bucket = "temp"  # a default bucket name
        with pytest.raises(StorageUnavailable):
            await storage.exists(bucket, "a")
        with pytest.raises(StorageUnavailable):
            await storage.delete(bucket, "a")
        with pytest.raises(StorageUnavailable):
            await storage.open(bucket, "a")
        with pytest.raises(StorageUnavailable):
            await storage.put_stream(bucket, "a", one_chunk(), content_type="text/plain")
        with pytest.raises(StorageUnavailable):
            await storage.ensure_buckets()

    async def test_a_failing_source_is_not_the_stores_fault(self, tmp_path: Path) -> None:
        storage = ObjectStorage(Settings(filestore_data_dir=tmp_path))
        await storage.ensure_buckets()

        async def client_gone() -> AsyncIterator[memoryview]:
            yield memoryview(b"x")
            raise ConnectionResetError("the client went away")

        with pytest.raises(ConnectionResetError):
            await storage.put_stream("temp", "a", client_gone(), content_type="text/plain")


class TestMisconfiguredStore:
    async def test_wrong_secret_is_not_an_outage(self, seaweed: SeaweedFS, tmp_path: Path) -> None:
        storage = s3_storage(
            seaweed.endpoint,
            access_key=seaweed.access_key,
            secret_key="not-the-secret",
            tmp_path=tmp_path,
        )
        bucket = "temp"  # a default bucket name
        with pytest.raises(PermissionDeniedError):
            await storage.put_stream(bucket, "a", one_chunk(), content_type="text/plain")
        with pytest.raises(PermissionDeniedError):
            await storage.open(bucket, "a")

    async def test_missing_object_is_not_found(self, seaweed: SeaweedFS, tmp_path: Path) -> None:
        storage = s3_storage(
            seaweed.endpoint,
            access_key=seaweed.access_key,
            secret_key=seaweed.secret_key,
            tmp_path=tmp_path,
        )
        bucket = "temp"  # a default bucket name
        minio = minio_client(seaweed)
        if not minio.bucket_exists(bucket):
            minio.make_bucket(bucket)
        minio.put_object(bucket, "present", io.BytesIO(b"x"), 1)
        assert await storage.exists(bucket, "present")
        assert not await storage.exists(bucket, "absent")
        with pytest.raises(FileNotFoundError):
            await storage.open(bucket, "absent")
