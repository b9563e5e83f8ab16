"""Outages: S3 or PostgreSQL unreachable gives a fast 503 JSON, and service resumes after.

A dedicated server reaches SeaweedFS and PostgreSQL through two `TcpProxy`s that the tests
cut and restore. Every cut is restored in a `finally`, so one failing test does not leave the
next one without its backing services. With FILESTORE_TEST_DATABASE_URL (no embedded server to
proxy) the PostgreSQL outages are skipped and the S3 one still runs.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.auth.support import sql
from tests.conftest import TEST_MAX_FILE_SIZE, Postgres, ServerFactory
from tests.fixtures.inspect import StoreInspector, minio_client
from tests.fixtures.live import Api, LiveServer, production_env
from tests.fixtures.servers import SeaweedFS, TcpProxy, s3_env

FAST_SECONDS = 10.0
CSV = b"full_name,email\nJohn Doe,john@example.com\n"


@dataclass
class Outage:
    server: LiveServer
    s3_proxy: TcpProxy
    pg_proxy: TcpProxy | None
    seaweed: SeaweedFS
    admin: Api
    customer_id: int
    file_id: int

    def postgres_proxy(self) -> TcpProxy:
        """The proxy in front of PostgreSQL; skips the test when there is none."""
        if self.pg_proxy is None:
            pytest.skip("needs the embedded PostgreSQL's TCP port to put a proxy in front of it")
        return self.pg_proxy


@pytest.fixture(scope="module")
def outage(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
) -> Iterator[Outage]:
    s3_host, _, s3_port = seaweed.endpoint.rpartition(":")
    database_url = postgres.create_database("filestore_outage")
    embedded = postgres.embedded
    with contextlib.ExitStack() as stack:
        s3_proxy = stack.enter_context(TcpProxy(s3_host, int(s3_port)))
        pg_proxy = None
        if embedded is not None and embedded.tcp_port is not None:
            pg_proxy = stack.enter_context(TcpProxy("127.0.0.1", embedded.tcp_port))
            database = urllib.parse.urlsplit(database_url).path.lstrip("/")
            database_url = embedded.tcp_url_for(database, port=pg_proxy.port)
        env = production_env(database_url)
        env["MAX_FILE_SIZE"] = str(TEST_MAX_FILE_SIZE)
        env.update(s3_env(seaweed, endpoint=f"127.0.0.1:{s3_proxy.port}"))
        server = start_filestore(env)
        try:
            admin = server.admin()
            customer_id = int(admin.new_customer()["id"])
            uploaded = admin.upload(CSV, "customers.csv", customer_id=customer_id)
            assert uploaded.status_code == 201, uploaded.text
            yield Outage(
                server, s3_proxy, pg_proxy, seaweed, admin, customer_id, int(uploaded.json()["id"])
            )
        finally:
            server.stop()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_503(response: httpx.Response, elapsed: float, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == code
    assert elapsed < FAST_SECONDS, f"took {elapsed:.1f}s"


class TestS3Down:
    def test_requests_fail_fast_then_recover(self, outage: Outage) -> None:
        admin, server = outage.admin, outage.server
        inspector = StoreInspector(server, outage.seaweed)
        before = inspector.snapshot()
        outage.s3_proxy.cut()
        try:
            response, elapsed = timed(
                lambda: admin.upload(CSV, "during.csv", customer_id=outage.customer_id)
            )
            assert_503(response, elapsed, "storage_unavailable")

            response, elapsed = timed(lambda: admin.get(f"/files/download/{outage.file_id}"))
            assert_503(response, elapsed, "storage_unavailable")

            response, elapsed = timed(lambda: server.api().get("/health"))
            assert response.status_code == 503
            assert elapsed < FAST_SECONDS
            health = response.json()
            assert health["status"] == "unhealthy"
            assert health["storage"].startswith("unavailable")
            assert health["database"] == "ok"

            # Metadata lives in PostgreSQL: it is still served while the store is down.
            assert admin.get(f"/files/{outage.file_id}").status_code == 200
        finally:
            outage.s3_proxy.restore()

        inspector.assert_nothing_new(before)
        health = server.api().get("/health").json()
        assert (health["status"], health["database"], health["storage"]) == ("healthy", "ok", "ok")
        assert admin.get(f"/files/download/{outage.file_id}").content == CSV
        again = admin.upload(CSV, "after.csv", customer_id=outage.customer_id)
        assert again.status_code == 201, again.text
        names = [f["filename"] for f in admin.get(f"/files/customer/{outage.customer_id}").json()]
        assert "during.csv" not in names
        assert "after.csv" in names


class TestPostgresDown:
    def test_requests_fail_fast_then_recover(self, outage: Outage) -> None:
        admin, server = outage.admin, outage.server
        pg_proxy = outage.postgres_proxy()
        pg_proxy.cut()
        try:
            response, elapsed = timed(
                lambda: server.api().post(
                    "/auth/login", json={"username": "admin", "password": server.admin_password}
                )
            )
            assert_503(response, elapsed, "database_unavailable")

            response, elapsed = timed(lambda: admin.get(f"/files/{outage.file_id}"))
            assert_503(response, elapsed, "database_unavailable")

            response, elapsed = timed(lambda: admin.get(f"/customers/{outage.customer_id}"))
            assert_503(response, elapsed, "database_unavailable")

            response, elapsed = timed(lambda: server.api().get("/health"))
            assert response.status_code == 503
            assert elapsed < FAST_SECONDS
            health = response.json()
            assert health["status"] == "unhealthy"
            assert health["database"].startswith("unavailable")
            assert health["storage"] == "ok"
        finally:
            pg_proxy.restore()

        login = server.api().post(
            "/auth/login", json={"username": "admin", "password": server.admin_password}
        )
        assert login.status_code == 200, login.text
        assert admin.get(f"/files/{outage.file_id}").status_code == 200
        assert server.api().get("/health").status_code == 200


def objects_under(seaweed: SeaweedFS, prefix: str) -> set[str]:
    """Every object of every bucket whose key starts with `prefix`, as `bucket/key`."""
    client = minio_client(seaweed)
    return {
        f"{bucket.name}/{obj.object_name}"
        for bucket in client.list_buckets()
        for obj in client.list_objects(bucket.name, prefix=prefix, recursive=True)
    }


def log_events(server: LiveServer) -> list[dict[str, Any]]:
    events = []
    for line in server.log().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


class TestDatabaseFailsAfterTheObjectIsStored:
    """The row is completed after the object is; if that write fails, the object goes."""

    def test_object_is_deleted_and_503_returned(self, outage: Outage) -> None:
        admin, server = outage.admin, outage.server
        pg_proxy = outage.postgres_proxy()
        customer_id = int(admin.new_customer()["id"])
        prefix = f"customers/{customer_id}/"
        # SeaweedFS's buckets are shared by every S3 server of the session: compare, don't count.
        inspector = StoreInspector(server, outage.seaweed)
        before = inspector.snapshot()
        before_under_prefix = objects_under(outage.seaweed, prefix)
        boundary = uuid.uuid4().hex
        chunk = b"a,b,c,d,e,f,g,h\n" * 65536  # 1 MiB of CSV
        chunks = 10

        def body() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="customer_id"\r\n\r\n'
                f"{customer_id}\r\n"
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            for n in range(chunks):
                if n == 1:
                    time.sleep(1.0)  # the server has read the fields and is storing the file
                if n == chunks // 2:
                    pg_proxy.cut()
                yield chunk
            yield f"\r\n--{boundary}--\r\n".encode()

        try:
            response, elapsed = timed(
                lambda: admin.http.post(
                    "/files/upload",
                    content=body(),
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                )
            )
        finally:
            pg_proxy.restore()
        assert_503(response, elapsed, "database_unavailable")

        assert objects_under(outage.seaweed, prefix) == before_under_prefix
        added = inspector.new_since(before)
        assert not added.objects, added
        assert not added.multipart_uploads, added
        # Its row was written `uploading` when the file began; the database was gone when the
        # upload failed, so the row stays, holding no bytes and never listed, until the sweep's
        # stuck-row step removes it (ORPHAN_GRACE_SECONDS later).
        left = sql(
            server,
            "SELECT upload_status::text FROM file_uploads WHERE customer_id = %s",
            (customer_id,),
        )
        assert {status for (status,) in left} <= {"uploading", "verifying"}

        # The object really was complete before the row write failed, and was then deleted.
        events = log_events(server)
        stored = [
            e
            for e in events
            if e.get("event") == "file.stored" and str(e.get("key", "")).startswith(prefix)
        ]
        assert len(stored) == 1
        assert stored[0]["size"] == len(chunk) * chunks
        discarded = [e for e in events if e.get("event") == "file.discarded"]
        assert stored[0]["key"] in {e.get("key") for e in discarded}

        assert admin.get(f"/files/customer/{customer_id}").json() == []
