"""Virus scanning with a real clamd (Debian's `clamav-daemon`) and a signature database the tests
write themselves: the EICAR test signature (see `tests/fixtures/clamd.py`).

* the clamd client on its own: PING, a clean stream, EICAR, and the two ways clamd stops short
  of scanning a whole file (StreamMaxLength, MaxFileSize with AlertExceedsMax) -> never clean;
* live servers with VIRUS_SCAN=clamd on S3 and on the local store: EICAR -> 422 `virus_found`
  naming the signature with nothing kept, also when it sits past the first megabytes; a clean
  file -> 201 `scan_status: clean`;
* a clamd with deliberately small limits, fail closed (503, nothing kept) and fail open (201,
  `unscanned`); a clamd that went down, both ways, and what `/health` says about it;
* VIRUS_SCAN=off: `scan_status: disabled`, no scanner in `/health`.

Skipped, with the reason, only where clamd is not installed (`make test` installs it when it
runs as root with apt-get: the `test-deps` target).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from filestore.files import scan as scanning
from filestore.settings import Settings
from tests.conftest import TEST_MAX_FILE_SIZE, Postgres, ServerFactory
from tests.files.test_direct_upload import complete, put, reserve
from tests.fixtures.clamd import EICAR, SIGNATURE, Clamd, clamd_binary, start_clamd
from tests.fixtures.inspect import StoreInspector
from tests.fixtures.live import Api, LiveServer, production_env
from tests.fixtures.servers import LOOPBACK, SeaweedFS, free_port, s3_env

MiB = 1024 * 1024

# The small clamd: streams over 1 MiB are cut off (an ERROR reply mid-stream); files over
# 256 KiB are only partly scanned, which AlertExceedsMax turns into a Heuristics.Limits FOUND.
SMALL_STREAM_MAX = 1 * MiB
SMALL_FILE_MAX = 256 * 1024
SMALL_LIMITS = {
    "StreamMaxLength": "1M",
    "MaxFileSize": "256K",
    "MaxScanSize": "256K",
    "AlertExceedsMax": "yes",
}


def require_clamd() -> None:
    if clamd_binary() is None:
        pytest.skip(
            "clamd is not installed: `make test` installs Debian's clamav-daemon (target "
            "test-deps) when run as root with apt-get; elsewhere `apt-get install clamav-daemon`"
        )


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    """clamd on a loopback TCP port with limits above any upload."""
    require_clamd()
    daemon = start_clamd(tmp_path_factory.mktemp("clamd"))
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def small_clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    """clamd on a unix socket with deliberately small limits."""
    require_clamd()
    daemon = start_clamd(
        tmp_path_factory.mktemp("clamd-small"), unix_socket=True, limits=SMALL_LIMITS
    )
    yield daemon
    daemon.stop()


def csv_bytes(size: int, seed: str = "row") -> bytes:
    """A CSV file of about `size` bytes (text, so the .csv sniff accepts it)."""
    line = f"{seed},{hashlib.sha256(seed.encode()).hexdigest()}\n".encode()
    return (line * (size // len(line) + 1))[:size]


def scan_env(
    postgres: Postgres, seaweed: SeaweedFS, tmp_path: Path, store: str, extra: dict[str, str]
) -> dict[str, str]:
    env = production_env(postgres.create_database(f"filestore_scan_{store}"))
    env["MAX_FILE_SIZE"] = str(TEST_MAX_FILE_SIZE)
    if store == "s3":
        env.update(s3_env(seaweed))
    else:
        env["FILESTORE_DATA_DIR"] = str(tmp_path)
    env.update(extra)
    return env


def upload(server: LiveServer, content: bytes, filename: str = "data.csv") -> httpx.Response:
    admin = server.admin()
    customer = admin.new_customer()
    return admin.upload(content, filename, customer_id=customer["id"])


def assert_code(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def health(server: LiveServer) -> httpx.Response:
    return httpx.get(f"{server.base_url}/health", timeout=30)


# -- the clamd client on its own -----------------------------------------------------------------


def client_of(daemon: Clamd, timeout: float = 10) -> scanning.ClamdClient:
    return scanning.ClamdClient(
        host=LOOPBACK, port=daemon.port or 0, socket_path=daemon.socket_path, timeout=timeout
    )


async def scan_bytes(
    client: scanning.ClamdClient, data: bytes, chunk: int = 64 * 1024
) -> scanning.Verdict:
    session = await client.instream()
    try:
        view = memoryview(data)
        for start in range(0, len(data), chunk):
            await session.feed(view[start : start + chunk])
        return await session.verdict()
    finally:
        session.close()


class TestParseReply:
    @pytest.mark.parametrize(
        ("reply", "clean", "signature"),
        [
            ("stream: OK", True, None),
            ("stream: Eicar-Signature FOUND", False, "Eicar-Signature"),
            ("stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND", False, None),
            ("INSTREAM size limit exceeded. ERROR", False, None),
            ("stream: Can't create temporary file ERROR", False, None),
            ("UNKNOWN COMMAND", False, None),
            ("", False, None),
        ],
    )
    def test_only_ok_is_clean(self, reply: str, clean: bool, signature: str | None) -> None:
        verdict = scanning.parse_reply(reply)
        assert verdict.clean is clean
        assert verdict.signature == signature
        assert (verdict.reason is None) == (clean or signature is not None)


class TestClamdClient:
    def test_ping(self, clamd: Clamd, small_clamd: Clamd) -> None:
        asyncio.run(client_of(clamd).ping())  # TCP
        asyncio.run(client_of(small_clamd).ping())  # unix socket

    def test_clean_stream(self, clamd: Clamd) -> None:
        verdict = asyncio.run(scan_bytes(client_of(clamd), csv_bytes(3 * MiB)))
        assert verdict.clean
        assert not verdict.infected

    def test_eicar_found_with_its_signature(self, clamd: Clamd) -> None:
        verdict = asyncio.run(scan_bytes(client_of(clamd), csv_bytes(2 * MiB) + EICAR))
        assert verdict.infected
        assert verdict.signature is not None
        assert verdict.signature.startswith(SIGNATURE)
        assert not verdict.clean

    def test_stream_over_stream_max_length_is_not_clean(self, small_clamd: Clamd) -> None:
        verdict = asyncio.run(scan_bytes(client_of(small_clamd), csv_bytes(3 * SMALL_STREAM_MAX)))
        assert not verdict.clean
        assert not verdict.infected
        # clamd's own words, read from the socket after our send failed.
        assert verdict.reason == "clamd answered 'INSTREAM size limit exceeded. ERROR'"

    def test_file_over_max_file_size_is_not_clean(self, small_clamd: Clamd) -> None:
        # Under StreamMaxLength, over MaxFileSize: clamd would say "OK" without AlertExceedsMax.
        verdict = asyncio.run(scan_bytes(client_of(small_clamd), csv_bytes(2 * SMALL_FILE_MAX)))
        assert not verdict.clean
        assert not verdict.infected
        assert verdict.reason is not None
        assert "Heuristics.Limits.Exceeded" in verdict.reason

    def test_unreachable(self) -> None:
        client = scanning.ClamdClient(host=LOOPBACK, port=free_port(), socket_path=None, timeout=2)
        with pytest.raises(scanning.ClamdError):
            asyncio.run(client.ping())
        with pytest.raises(scanning.ClamdError):
            asyncio.run(client.instream())

    def test_clamd_that_never_answers_is_not_clean(self, tmp_path: Path) -> None:
        async def scenario() -> scanning.Verdict:
            async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                while await reader.read(65536):
                    pass  # reads everything, answers nothing

            path = tmp_path / "mute.sock"
            async with await asyncio.start_unix_server(swallow, path=path):
                client = scanning.ClamdClient(host="", port=1, socket_path=path, timeout=0.5)
                return await scan_bytes(client, csv_bytes(256 * 1024))

        verdict = asyncio.run(scenario())
        assert not verdict.clean
        assert verdict.reason == "clamd did not answer in time"

    def test_clamd_that_stops_reading_makes_the_upload_wait_then_times_out(
        self, tmp_path: Path
    ) -> None:
        # Nothing piles up in our process: once the socket buffers are full, `feed` waits (and
        # with it the upload), up to the timeout; then the stream counts as not scanned.
        async def scenario() -> tuple[str | None, int]:
            stalled: list[asyncio.StreamWriter] = []

            async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                stalled.append(writer)  # never reads beyond asyncio's own small buffer

            path = tmp_path / "stalled.sock"
            async with await asyncio.start_unix_server(stall, path=path):
                client = scanning.ClamdClient(host="", port=1, socket_path=path, timeout=0.5)
                session = await client.instream()
                chunk = memoryview(csv_bytes(64 * 1024))
                for _ in range(64 * MiB // len(chunk)):
                    await session.feed(chunk)
                    if session.failure is not None:
                        break
                session.close()
                for writer in stalled:
                    writer.close()
            return session.failure, session.sent

        failure, sent = asyncio.run(scenario())
        assert failure == "clamd did not answer in time"
        assert sent < 8 * MiB  # what the kernel's socket buffers took, not the 64 MiB offered

    def test_settings(self) -> None:
        settings = Settings(_env_file=None, virus_scan=" CLAMD ", clamd_socket="")
        assert settings.virus_scan == "clamd"
        assert settings.clamd_socket is None
        assert (settings.clamd_port, settings.virus_scan_fail_open) == (3310, False)
        assert Settings(_env_file=None).virus_scan == "off"


# -- uploads through a live server ---------------------------------------------------------------


@pytest.fixture(scope="module", params=["s3", "local"])
def scan_server(
    request: pytest.FixtureRequest,
    clamd: Clamd,
    postgres: Postgres,
    seaweed: SeaweedFS,
    start_filestore: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> LiveServer:
    env = scan_env(
        postgres, seaweed, tmp_path_factory.mktemp("scan-store"), request.param, clamd.env()
    )
    return start_filestore(env)


class TestInfected:
    def test_eicar_422_names_the_signature_nothing_kept(
        self, scan_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        store = StoreInspector(scan_server, seaweed)
        admin = scan_server.admin()
        customer = admin.new_customer()
        before = store.snapshot()
        response = admin.upload(EICAR, "eicar.csv", customer_id=customer["id"])
        body = assert_code(response, 422, "virus_found")
        assert SIGNATURE in body["detail"]
        store.assert_nothing_new(before, wait=5)
        assert "file.virus_found" in scan_server.log()
        # ... and the audit log says who tried, for which customer, from where.
        audited = admin.get(
            "/audit-events",
            params={"action": "file.rejected_virus", "customer_id": customer["id"]},
        ).json()
        assert len(audited) == 1, audited
        assert audited[0]["details"]["filename"] == "eicar.csv"
        assert audited[0]["actor_id"] is not None
        assert audited[0]["client_ip"] == "127.0.0.1"

    def test_eicar_after_megabytes_of_clean_data(
        self, scan_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        # The whole stream is scanned, not only the head the type sniffer looks at; the object
        # is complete (several multipart parts on S3) when the verdict comes, and is deleted.
        store = StoreInspector(scan_server, seaweed)
        before = store.snapshot()
        body = assert_code(upload(scan_server, csv_bytes(9 * MiB) + EICAR), 422, "virus_found")
        assert SIGNATURE in body["detail"]
        store.assert_nothing_new(before, wait=5)


class TestEveryWayIn:
    """Direct and resumable uploads end in the same verification: clamd reads the stored
    bytes, an infected file is deleted and its upload left `rejected` with reason `virus`."""

    def test_a_direct_upload_is_scanned_from_the_store(
        self, scan_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        if "MINIO_ENDPOINT" not in scan_server.env:
            pytest.skip("direct uploads need S3")
        store = StoreInspector(scan_server, seaweed)
        admin = scan_server.admin()
        content = csv_bytes(2 * MiB, seed="direct") + EICAR
        reservation = reserve(admin, content, filename="direct.csv", file_type="temp")
        assert put(reservation, content).status_code == 200
        body = assert_code(complete(admin, reservation), 422, "virus_found")
        assert SIGNATURE in body["detail"]
        signed = urlsplit(reservation["url"]).path.lstrip("/")  # the file's own `bucket/key`
        assert signed not in store.objects()
        assert_code(complete(admin, reservation), 409, "upload_rejected")
        assert "(virus)" in complete(admin, reservation).json()["detail"]

    def test_a_resumable_upload_is_scanned_at_its_last_byte(
        self, scan_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        store = StoreInspector(scan_server, seaweed)
        admin = scan_server.admin()
        customer = admin.new_customer()
        content = csv_bytes(6 * MiB, seed="tus") + EICAR
        before = store.snapshot()
        name = base64.b64encode(b"resumable.csv").decode()
        owner = base64.b64encode(str(customer["id"]).encode()).decode()
        tus = {"Tus-Resumable": "1.0.0"}
        created = admin.post(
            "/files/tus",
            headers={
                **tus,
                "Upload-Length": str(len(content)),
                "Upload-Metadata": f"filename {name},customer_id {owner}",
            },
        )
        assert created.status_code == 201, created.text
        path = "/files/tus/" + created.headers["Location"].rsplit("/", 1)[-1]
        last = admin.http.patch(
            path,
            content=content,
            headers={
                **tus,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
            },
        )
        body = assert_code(last, 422, "virus_found")
        assert SIGNATURE in body["detail"]
        state = admin.get(path, headers=tus).json()
        assert state["status"] == "rejected"
        assert state["rejection"]["code"] == "virus_found"
        store.assert_nothing_new(before, wait=5)
        # Audited like a form upload's virus: who, for which customer, from where, and which
        # tus upload.
        audited = admin.get(
            "/audit-events",
            params={"action": "file.rejected_virus", "customer_id": customer["id"]},
        ).json()
        assert len(audited) == 1, audited
        assert audited[0]["details"]["filename"] == "resumable.csv"
        assert audited[0]["details"]["via"] == "tus"
        assert audited[0]["details"]["upload_id"] == path.rsplit("/", 1)[-1]
        assert SIGNATURE in audited[0]["details"]["reason"]
        assert audited[0]["actor_id"] is not None
        assert audited[0]["client_ip"] == "127.0.0.1"


class TestClean:
    def test_201_scan_status_clean(self, scan_server: LiveServer) -> None:
        content = csv_bytes(3 * MiB, seed="clean")
        response = upload(scan_server, content)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["scan_status"] == "clean"
        assert body["sha256"] == hashlib.sha256(content).hexdigest()
        admin = scan_server.admin()
        assert admin.get(f"/files/{body['id']}").json()["scan_status"] == "clean"
        assert admin.get(f"/files/download/{body['id']}").content == content

    def test_health_reports_the_scanner(self, scan_server: LiveServer) -> None:
        response = health(scan_server)
        assert response.status_code == 200, response.text
        assert response.json()["scanner"] == "ok"


# -- clamd cannot scan the file: its limits ------------------------------------------------------


def small_server(
    small_clamd: Clamd,
    postgres: Postgres,
    seaweed: SeaweedFS,
    start_filestore: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    fail_open: bool,
) -> LiveServer:
    extra = small_clamd.env() | {"VIRUS_SCAN_FAIL_OPEN": str(fail_open).lower()}
    return start_filestore(
        scan_env(postgres, seaweed, tmp_path_factory.mktemp("small"), "s3", extra)
    )


@pytest.fixture(scope="module")
def small_closed(
    small_clamd: Clamd,
    postgres: Postgres,
    seaweed: SeaweedFS,
    start_filestore: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> LiveServer:
    return small_server(
        small_clamd, postgres, seaweed, start_filestore, tmp_path_factory, fail_open=False
    )


@pytest.fixture(scope="module")
def small_open(
    small_clamd: Clamd,
    postgres: Postgres,
    seaweed: SeaweedFS,
    start_filestore: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> LiveServer:
    return small_server(
        small_clamd, postgres, seaweed, start_filestore, tmp_path_factory, fail_open=True
    )


# Over StreamMaxLength (clamd cuts the stream off), and over MaxFileSize only (clamd would scan
# part of the file and say OK; AlertExceedsMax makes it say so).
OVER_LIMIT = {"stream_max_length": 4 * SMALL_STREAM_MAX, "max_file_size": 2 * SMALL_FILE_MAX}


class TestScannerLimits:
    def test_small_clamd_still_finds_eicar(self, small_closed: LiveServer) -> None:
        body = assert_code(upload(small_closed, EICAR), 422, "virus_found")
        assert SIGNATURE in body["detail"]

    @pytest.mark.parametrize("limit", OVER_LIMIT)
    def test_fail_closed_503_nothing_kept(
        self, small_closed: LiveServer, seaweed: SeaweedFS, limit: str
    ) -> None:
        store = StoreInspector(small_closed, seaweed)
        before = store.snapshot()
        response = upload(small_closed, csv_bytes(OVER_LIMIT[limit]))
        body = assert_code(response, 503, "scanner_unavailable")
        assert "not stored" in body["detail"]
        expected = {"stream_max_length": "size limit exceeded", "max_file_size": "Limits.Exceeded"}
        assert expected[limit] in body["detail"]
        store.assert_nothing_new(before, wait=5)

    @pytest.mark.parametrize("limit", OVER_LIMIT)
    def test_fail_open_201_unscanned(self, small_open: LiveServer, limit: str) -> None:
        content = csv_bytes(OVER_LIMIT[limit], seed=limit)
        response = upload(small_open, content)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["scan_status"] == "unscanned"
        assert body["file_size"] == len(content)
        download = small_open.admin().get(f"/files/download/{body['id']}")
        assert download.content == content


# -- clamd is down -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def down_servers(
    postgres: Postgres,
    seaweed: SeaweedFS,
    start_filestore: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, LiveServer]:
    """Two servers (fail closed, fail open) whose clamd was up at their start and then stopped."""
    require_clamd()
    daemon = start_clamd(tmp_path_factory.mktemp("clamd-doomed"))
    servers: dict[str, LiveServer] = {}
    try:
        for mode in ("closed", "open"):
            extra = daemon.env() | {"VIRUS_SCAN_FAIL_OPEN": str(mode == "open").lower()}
            env = scan_env(postgres, seaweed, tmp_path_factory.mktemp("down"), "s3", extra)
            servers[mode] = start_filestore(env)
            assert health(servers[mode]).json()["scanner"] == "ok"
    finally:
        daemon.stop()
    return servers


class TestClamdDown:
    def test_fail_closed_503_nothing_kept(
        self, down_servers: dict[str, LiveServer], seaweed: SeaweedFS
    ) -> None:
        server = down_servers["closed"]
        store = StoreInspector(server, seaweed)
        before = store.snapshot()
        body = assert_code(upload(server, csv_bytes(2 * MiB)), 503, "scanner_unavailable")
        assert "127.0.0.1" not in body["detail"]  # no internal addresses in client errors
        store.assert_nothing_new(before, wait=5)

    def test_fail_closed_health_503(self, down_servers: dict[str, LiveServer]) -> None:
        response = health(down_servers["closed"])
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["scanner"].startswith("unavailable: ")
        assert (body["database"], body["storage"]) == ("ok", "ok")

    def test_fail_open_201_unscanned(self, down_servers: dict[str, LiveServer]) -> None:
        content = csv_bytes(2 * MiB, seed="open")
        response = upload(down_servers["open"], content)
        assert response.status_code == 201, response.text
        assert response.json()["scan_status"] == "unscanned"

    def test_fail_open_health_200_reports_scanner(
        self, down_servers: dict[str, LiveServer]
    ) -> None:
        response = health(down_servers["open"])
        assert response.status_code == 200, response.text
        assert response.json()["scanner"].startswith("unavailable: ")


# -- scanning off ---------------------------------------------------------------------------------


class TestScanningOff:
    def test_scan_status_disabled_and_no_scanner_in_health(self, s3_server: LiveServer) -> None:
        admin: Api = s3_server.admin()
        customer = admin.new_customer()
        response = admin.upload(csv_bytes(64 * 1024), customer_id=customer["id"])
        assert response.status_code == 201, response.text
        assert response.json()["scan_status"] == "disabled"
        assert "scanner" not in health(s3_server).json()
