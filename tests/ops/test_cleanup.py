"""The cleanup sweep removes each kind of leftover a crash or an expiry leaves, and nothing else.

The sweep server gets buckets of its own: other S3 servers of the session share SeaweedFS, and
their objects are orphans from this server's point of view.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from filestore.db import libpq_url
from tests.conftest import Postgres, ServerFactory
from tests.fixtures.inspect import StoreInspector, minio_client
from tests.fixtures.live import LiveServer, clean_environ, production_env
from tests.fixtures.servers import SeaweedFS, own_buckets, s3_env

GRACE_SECONDS = 20  # a `filestore cleanup` start on a loaded machine took over 12 s
PDF = b"%PDF-1.4\n" + b"x" * 2000


@pytest.fixture(scope="module")
def sweep_server(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
) -> LiveServer:
    prefix = f"sweep{uuid.uuid4().hex[:6]}"
    env = production_env(postgres.create_database("filestore_sweep"))
    env.update(own_buckets(prefix))
    env.update(s3_env(seaweed))
    env.update(
        {
            "ORPHAN_GRACE_SECONDS": str(GRACE_SECONDS),
            "FILE_CLEANUP_INTERVAL_SECONDS": "86400",
        }
    )
    return start_filestore(env)


def run_cleanup(server: LiveServer) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "filestore", "cleanup"],
        env=clean_environ() | server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sql(server: LiveServer, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(server.env["DATABASE_URL"]), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


class TestSweep:
    def test_removes_each_leftover_and_nothing_else(
        self, sweep_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        admin = sweep_server.admin()
        customer = admin.new_customer()["id"]
        store = StoreInspector(sweep_server, seaweed)
        minio = minio_client(seaweed)
        uploads_bucket = sweep_server.env["MINIO_BUCKET_CUSTOMER_UPLOADS"]

        # Kept: a live file, and a file that expires later.
        live = admin.upload(PDF, "live.pdf", customer_id=customer).json()
        later = admin.upload(
            PDF,
            "later.pdf",
            customer_id=customer,
            expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
        ).json()
        # Removed: a file that expires in 2 s, a deleted file whose object survived, an old
        # orphan object, a row stuck in `uploading`, an abandoned multipart upload.
        expiring = admin.upload(
            PDF,
            "soon.pdf",
            customer_id=customer,
            expires_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat(),
        ).json()
        deleted = admin.upload(PDF, "deleted.pdf", customer_id=customer).json()
        sql(
            sweep_server,
            "UPDATE file_uploads SET upload_status = 'deleted', deleted_at = now() WHERE id = %s",
            (deleted["id"],),
        )
        minio.put_object(uploads_bucket, "customers/999/orphan-old", io.BytesIO(b"old"), 3)
        sql(
            sweep_server,
            "INSERT INTO file_uploads (filename, bucket, object_key, file_size, mime_type, "
            "file_type, md5, sha256, upload_status, created_at) "
            "VALUES ('stuck.pdf', %s, 'users/1/stuck', 0, "
            "'application/pdf', 'document', '', '', 'uploading', now() - interval '2 hours')",
            (uploads_bucket,),
        )
        abandoned = minio._create_multipart_upload(uploads_bucket, "users/1/abandoned", {})
        time.sleep(GRACE_SECONDS + 1)
        # Kept: an orphan younger than the grace period (an upload may still be recording it).
        minio.put_object(uploads_bucket, "customers/999/orphan-young", io.BytesIO(b"young"), 5)

        result = run_cleanup(sweep_server)
        assert result.returncode == 0, result.stdout + result.stderr

        objects = store.objects()
        assert store.object_of(live["id"]) in objects
        assert store.object_of(later["id"]) in objects
        assert f"{uploads_bucket}/customers/999/orphan-young" in objects
        assert store.object_of(expiring["id"]) not in objects
        assert store.object_of(deleted["id"]) not in objects
        assert f"{uploads_bucket}/customers/999/orphan-old" not in objects
        assert f"{uploads_bucket}/users/1/abandoned" not in store.multipart_uploads(), abandoned
        assert sql(
            sweep_server, "SELECT count(*) FROM file_uploads WHERE upload_status = 'uploading'"
        ) == [(0,)]
        statuses = dict(sql(sweep_server, "SELECT id, upload_status::text FROM file_uploads"))
        assert statuses[expiring["id"]] == "expired"
        assert statuses[live["id"]] == statuses[later["id"]] == "completed"
        assert admin.get(f"/files/download/{live['id']}").content == PDF
        assert admin.get(f"/files/{expiring['id']}").status_code == 404

        jobs = admin.get("/files/jobs", params={"job_type": "file_cleanup"}).json()
        assert jobs, "the sweep is not listed in GET /files/jobs"
        newest = jobs[0]
        assert newest["status"] == "completed"
        assert newest["result"]["expired_files"] >= 1
        assert (
            newest["result"]["orphan_objects"] >= 2
        )  # the old orphan and the deleted file's object
        assert newest["result"]["stuck_rows"] == 1
        assert newest["result"]["aborted_uploads"] >= 1

    def test_expired_file_is_404_before_any_sweep(self, sweep_server: LiveServer) -> None:
        admin = sweep_server.admin()
        customer = admin.new_customer()["id"]
        file = admin.upload(
            PDF,
            "brief.pdf",
            customer_id=customer,
            expires_at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
        ).json()
        assert admin.get(f"/files/download/{file['id']}").status_code == 200
        time.sleep(1.5)
        assert admin.get(f"/files/download/{file['id']}").status_code == 404
        assert admin.get(f"/files/{file['id']}").status_code == 404


class TestPeriodicCleanup:
    def test_worker_runs_file_cleanup_on_its_own(
        self,
        postgres: Postgres,
        start_filestore: ServerFactory,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        env = production_env(postgres.create_database("filestore_periodic"))
        env.update(
            {
                "FILESTORE_DATA_DIR": str(tmp_path_factory.mktemp("periodic")),
                "FILESTORE_IN_PROCESS_WORKER": "true",
                "FILE_CLEANUP_INTERVAL_SECONDS": "1",
                "TEMP_FILE_TTL_HOURS": "24",
            }
        )
        server = start_filestore(env)
        admin = server.admin()
        deadline = time.monotonic() + 60
        jobs: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not jobs:
            jobs = admin.get(
                "/files/jobs", params={"job_type": "file_cleanup", "status": "completed"}
            ).json()
            time.sleep(1)
        assert jobs, "no file_cleanup job ran within a minute"
        assert set(jobs[0]["result"]) >= {
            "expired_files",
            "orphan_objects",
            "stuck_rows",
            "aborted_uploads",
        }


def test_direct_upload_reservations_never_completed_are_swept(
    sweep_server: LiveServer, seaweed: SeaweedFS
) -> None:
    admin = sweep_server.admin()
    declared = {"filename": "scan.pdf", "file_size": len(PDF), "file_type": "temp"}
    declared["sha256"] = hashlib.sha256(PDF).hexdigest()
    lapsed = admin.post("/files/direct-uploads", json=declared).json()
    live = admin.post("/files/direct-uploads", json=declared).json()
    for reservation in (lapsed, live):
        put = httpx.put(reservation["url"], content=PDF, headers=reservation["headers"])
        assert put.status_code == 200
    bucket, key = sql(
        sweep_server,
        "SELECT bucket, object_key FROM file_uploads WHERE id = %s",
        (lapsed["upload_id"],),
    )[0]
    # The first reservation lapsed long ago (past the grace period); the second is current.
    sql(
        sweep_server,
        "UPDATE file_uploads SET reserved_until = now() - interval '1 hour' WHERE id = %s",
        (lapsed["upload_id"],),
    )

    result = run_cleanup(sweep_server)
    assert result.returncode == 0, result.stderr

    statuses = dict(
        sql(
            sweep_server,
            "SELECT id, upload_status::text FROM file_uploads WHERE id IN (%s, %s)",
            (lapsed["upload_id"], live["upload_id"]),
        )
    )
    assert statuses == {lapsed["upload_id"]: "expired", live["upload_id"]: "pending"}
    assert f"{bucket}/{key}" not in StoreInspector(sweep_server, seaweed).objects()
    done = admin.post(f"/files/direct-uploads/{live['upload_id']}/complete")
    assert done.status_code == 201, done.text
    gone = admin.post(f"/files/direct-uploads/{lapsed['upload_id']}/complete")
    assert gone.status_code == 404
