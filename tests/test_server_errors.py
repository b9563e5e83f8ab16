"""A bug or a misconfiguration is a logged 500 `{detail, code}`, not a disguised outage, and it
does not cost the client its keep-alive connection.

The server here runs against a real S3 server (SeaweedFS) with a wrong secret key: every
object operation is refused (403), which is a misconfiguration, not an outage (a store that
cannot be reached is a 503: `tests/test_failures.py`).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
import uuid

import pytest

from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import LiveServer, production_env
from tests.fixtures.servers import SeaweedFS, s3_env


@pytest.fixture(scope="module")
def misconfigured(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
) -> LiveServer:
    env = production_env(postgres.create_database("filestore_badsecret"))
    env.update(s3_env(seaweed))
    env["MINIO_SECRET_KEY"] = "not-the-secret-key"
    return start_filestore(env, wait_healthy=False)


def multipart(customer_id: int, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="customer_id"\r\n\r\n'
            f"{customer_id}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class TestMisconfiguredStore:
    def test_500_is_json_logged_and_keeps_the_connection(self, misconfigured: LiveServer) -> None:
        admin = misconfigured.admin()
        customer_id = int(admin.new_customer()["id"])
        body, content_type = multipart(customer_id, b"%PDF-1.4\n" + b"x" * 1000)
        url = urllib.parse.urlsplit(misconfigured.base_url)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        try:
            conn.request(
                "POST",
                "/files/upload",
                body=body,
                headers={
                    "Authorization": admin.http.headers["Authorization"],
                    "Content-Type": content_type,
                },
            )
            first = conn.getresponse()
            payload = json.loads(first.read())
            assert first.status == 500, payload
            assert payload == {"detail": "Internal server error", "code": "internal_error"}
            sock = conn.sock
            assert sock is not None, "the server closed the connection after its 500"

            conn.request("GET", "/health/live")
            second = conn.getresponse()
            assert second.status == 200
            assert json.loads(second.read()) == {"status": "alive"}
            assert conn.sock is sock, "the second request needed a new connection"
        finally:
            conn.close()

        events = [
            json.loads(line) for line in misconfigured.log().splitlines() if line.startswith("{")
        ]
        unhandled = [e for e in events if e.get("event") == "request.unhandled_error"]
        assert unhandled, "the 500 was not logged"
        assert "PermissionDenied" in unhandled[-1].get("exception", ""), unhandled[-1]
        assert not [e for e in events if e.get("event") == "storage.unavailable"]

    def test_health_still_reports_the_store_as_not_usable(self, misconfigured: LiveServer) -> None:
        health = misconfigured.api().get("/health")
        assert health.status_code == 503
        assert health.json()["storage"].startswith("unavailable")
        assert health.json()["database"] == "ok"
