"""Slow-loris uploads: a body that stalls, or trickles below the minimum rate, ends with a
408 JSON answer; a slow but steady link (a phone) is not cut. The fast tests set tiny bounds
on the in-process app; the live one checks what a real client sees on a real socket."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator

import pytest

from filestore.settings import Settings
from tests.conftest import Postgres, ServerFactory
from tests.fixtures.app import AsyncApi
from tests.fixtures.live import LiveServer, production_env

CSV_LINE = b"42,Jane Doe,jane@example.com\n"


def form(boundary: str, customer_id: int) -> tuple[bytes, bytes]:
    """The multipart head (fields and the file part's headers) and its tail."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="customer_id"\r\n\r\n'
        f"{customer_id}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="slow.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


async def paced_upload(
    api: AsyncApi, customer_id: int, *, chunks: int, chunk: bytes, every: float, stall: float = 0
) -> tuple[int, dict[str, str]]:
    boundary = uuid.uuid4().hex
    head, tail = form(boundary, customer_id)

    async def body() -> AsyncIterator[bytes]:
        yield head
        for n in range(chunks):
            if n == chunks // 2 and stall:
                await asyncio.sleep(stall)
            yield chunk
            await asyncio.sleep(every)
        yield tail

    response = await api.post(
        "/files/upload",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    return response.status_code, response.json()


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch, fast_settings_base: Settings) -> None:
    monkeypatch.setattr(fast_settings_base, "upload_idle_timeout_seconds", 0.5)
    monkeypatch.setattr(fast_settings_base, "upload_min_bytes_per_second", 2000)
    monkeypatch.setattr(fast_settings_base, "upload_rate_window_seconds", 0.6)


@pytest.mark.usefixtures("tight")
class TestSlowUploads:
    async def test_a_stalled_body_is_408_client_idle(self, admin_client: AsyncApi) -> None:
        customer = (await admin_client.new_customer())["id"]
        status, body = await paced_upload(
            admin_client, customer, chunks=6, chunk=CSV_LINE * 40, every=0.05, stall=2.0
        )
        assert (status, body["code"]) == (408, "client_idle"), body

    async def test_a_trickle_is_408_client_too_slow(self, admin_client: AsyncApi) -> None:
        customer = (await admin_client.new_customer())["id"]
        # 300 bytes every 0.25 s: 1.2 KB/s, under the 2 KB/s floor, never idle.
        status, body = await paced_upload(
            admin_client, customer, chunks=12, chunk=b"x" * 299 + b"\n", every=0.25
        )
        assert (status, body["code"]) == (408, "client_too_slow"), body

    async def test_a_slow_steady_phone_gets_through(self, admin_client: AsyncApi) -> None:
        customer = (await admin_client.new_customer())["id"]
        # ~8 KB/s with a 0.3 s hiccup in the middle: above the floor, never idle for long.
        status, body = await paced_upload(
            admin_client, customer, chunks=16, chunk=CSV_LINE * 35, every=0.12, stall=0.3
        )
        assert status == 201, body


class TestSlowLorisLive:
    def test_stalled_client_gets_408_json_and_the_connection_closes(
        self,
        postgres: Postgres,
        start_filestore: ServerFactory,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        env = production_env(postgres.create_database("filestore_pacing"))
        env["FILESTORE_DATA_DIR"] = str(tmp_path_factory.mktemp("pacing-store"))
        env["UPLOAD_IDLE_TIMEOUT_SECONDS"] = "1"
        server: LiveServer = start_filestore(env)
        admin = server.admin()
        customer = admin.new_customer()["id"]
        url = urllib.parse.urlsplit(server.base_url)
        boundary = uuid.uuid4().hex
        head, _ = form(boundary, customer)
        body = head + CSV_LINE * 100
        request = (
            f"POST /files/upload HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {admin.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body) * 10}\r\n\r\n"
        ).encode()
        assert url.hostname is not None
        assert url.port is not None
        started = time.monotonic()
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(request + body)  # ... and then nothing more
            answer = b""
            while chunk := sock.recv(65536):  # until the server closes the connection
                answer += chunk
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"code":"client_idle"' in answer
        assert elapsed < 6, f"took {elapsed:.1f}s"
        names = [f["filename"] for f in admin.get(f"/files/customer/{customer}").json()]
        assert "slow.csv" not in names
