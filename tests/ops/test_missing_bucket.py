"""A configured bucket that is gone: the cleanup sweep sweeps the other buckets and reports the
missing one, and `/health` says storage is unavailable instead of "ok"."""

from __future__ import annotations

import io
import time
import uuid

import pytest
from minio import Minio

from tests.conftest import Postgres, ServerFactory
from tests.fixtures.inspect import minio_client
from tests.fixtures.live import LiveServer, production_env
from tests.fixtures.servers import SeaweedFS, own_buckets, s3_env
from tests.ops.test_cleanup import run_cleanup

GRACE_SECONDS = 1


@pytest.fixture(scope="module")
def bucketless_server(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
) -> LiveServer:
    env = production_env(postgres.create_database("filestore_bucketless"))
    env.update(own_buckets(f"gone{uuid.uuid4().hex[:6]}"))
    env.update(s3_env(seaweed))
    env["ORPHAN_GRACE_SECONDS"] = str(GRACE_SECONDS)
    env["FILE_CLEANUP_INTERVAL_SECONDS"] = "86400"
    return start_filestore(env)


def remove_bucket(minio: Minio, bucket: str) -> None:
    for obj in minio.list_objects(bucket, recursive=True):
        assert obj.object_name is not None
        minio.remove_object(bucket, obj.object_name)
    minio.remove_bucket(bucket)


class TestMissingBucket:
    def test_sweep_goes_on_and_health_is_honest(
        self, bucketless_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        server = bucketless_server
        minio = minio_client(seaweed)
        main = server.env["MINIO_BUCKET_CUSTOMER_UPLOADS"]
        backups = server.env["MINIO_BUCKET_BACKUPS"]
        assert server.api().get("/health").json()["storage"] == "ok"

        minio.put_object(main, "customers/9/orphan", io.BytesIO(b"orphan"), 6)
        remove_bucket(minio, backups)
        time.sleep(GRACE_SECONDS + 0.5)
        result = run_cleanup(server)
        assert result.returncode == 0, result.stderr
        job = server.admin().get("/files/jobs", params={"job_type": "file_cleanup"}).json()[0]
        assert job["status"] == "completed", job
        assert job["result"]["missing_buckets"] == [backups], job
        assert job["result"]["orphan_objects"] == 1, job  # the other buckets were swept
        assert backups in (job["message"] or "")
        assert not list(minio.list_objects(main, prefix="customers/", recursive=True))

        health = server.api().get("/health")
        assert health.status_code == 503
        assert backups in health.json()["storage"]
        minio.make_bucket(backups)
        assert server.api().get("/health").status_code == 200

        # The main bucket gone: a read of a missing object must not pass for "ok".
        remove_bucket(minio, main)
        try:
            health = server.api().get("/health")
            assert health.status_code == 503, health.text
            assert health.json()["storage"].startswith("unavailable")
            assert main in health.json()["storage"]
        finally:
            minio.make_bucket(main)
        assert server.api().get("/health").status_code == 200
