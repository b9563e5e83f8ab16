"""Frozen backends (SIGSTOP): every request answers within a bounded, configured time.

A frozen server keeps its sockets open, so nothing fails on its own: only Filestore's own
bounds (DB_CONNECT_TIMEOUT_SECONDS, DB_STATEMENT_TIMEOUT_SECONDS, STORAGE_TIMEOUT_SECONDS,
STORAGE_READ_TIMEOUT_SECONDS) turn the wait into a 503. Each test freezes a PostgreSQL or a
SeaweedFS of its own (never the session's shared ones) and thaws it in a `finally`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_MAX_FILE_SIZE, Postgres, ServerFactory
from tests.fixtures.live import Api, LiveServer, production_env
from tests.fixtures.servers import (
    EmbeddedPostgres,
    SeaweedFS,
    s3_env,
    start_embedded_postgres,
    start_seaweedfs,
)

CSV = b"full_name,email\nJohn Doe,john@example.com\n"
# Bounds given to the server under test; every answer must come within BOUND seconds.
DB_TIMEOUTS = {"DB_CONNECT_TIMEOUT_SECONDS": "1", "DB_STATEMENT_TIMEOUT_SECONDS": "2"}
STORAGE_TIMEOUTS = {"STORAGE_TIMEOUT_SECONDS": "1", "STORAGE_READ_TIMEOUT_SECONDS": "2"}
BOUND = 7.0


def process_tree(root: int) -> list[int]:
    """`root` and every descendant of it (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += children
        frontier = children
    return tree


@contextlib.contextmanager
def frozen(root: int) -> Iterator[None]:
    """SIGSTOP `root` and its descendants; SIGCONT them however the block ends."""
    pids = process_tree(root)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def postmaster_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.pgdata / "postmaster.pid").read_text().splitlines()[0])


def timed_all(calls: dict[str, Callable[[], httpx.Response]]) -> dict[str, tuple[int, float]]:
    """Run every call at once; name -> (status, seconds)."""

    def run(call: Callable[[], httpx.Response]) -> tuple[int, float]:
        started = time.monotonic()
        try:
            status = call().status_code
        except httpx.TimeoutException:
            status = 0
        return status, time.monotonic() - started

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(run, call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_bounded_503s(results: dict[str, tuple[int, float]]) -> None:
    slow = {name: r for name, r in results.items() if r[0] != 503 or r[1] > BOUND}
    assert not slow, f"not a 503 within {BOUND}s: {slow}"


def requests_of(
    server: LiveServer, admin: Api, file_id: int, customer_id: int
) -> dict[str, Callable[[], httpx.Response]]:
    def fresh() -> Api:
        api = Api(admin.base_url, admin.token)
        api.http.timeout = httpx.Timeout(BOUND * 3)
        return api

    calls: dict[str, Callable[[], httpx.Response]] = {
        "upload": lambda: fresh().upload(CSV, "frozen.csv", customer_id=customer_id),
        "download": lambda: fresh().get(f"/files/download/{file_id}"),
        "login": lambda: fresh().post(
            "/auth/login", json={"username": "admin", "password": server.admin_password}
        ),
        "health": lambda: fresh().get("/health"),
    }
    for n in range(10):
        calls[f"metadata-{n}"] = lambda: fresh().get(f"/files/{file_id}")
    return calls


@dataclass
class Setup:
    server: LiveServer
    admin: Api
    customer_id: int
    file_id: int


def serve_with_a_file(start_filestore: ServerFactory, env: dict[str, str]) -> Setup:
    """A server on `env` with one customer and one stored file."""
    env["MAX_FILE_SIZE"] = str(TEST_MAX_FILE_SIZE)
    server = start_filestore(env)
    admin = server.admin()
    customer_id = int(admin.new_customer()["id"])
    uploaded = admin.upload(CSV, "before.csv", customer_id=customer_id)
    assert uploaded.status_code == 201, uploaded.text
    return Setup(server, admin, customer_id, int(uploaded.json()["id"]))


def wait_healthy(server: LiveServer, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while server.api().get("/health").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    pg = start_embedded_postgres(tmp_path / "pgdata")
    try:
        yield pg
    finally:
        pg.stop()


class TestPostgresFrozen:
    def test_every_request_answers_503_in_bounded_time(
        self, own_postgres: EmbeddedPostgres, seaweed: SeaweedFS, start_filestore: ServerFactory
    ) -> None:
        env = production_env(own_postgres.tcp_url_for("postgres"))
        env.update(s3_env(seaweed))
        env.update(DB_TIMEOUTS)
        setup = serve_with_a_file(start_filestore, env)
        server, admin, file_id = setup.server, setup.admin, setup.file_id
        for _ in range(3):  # warm the pool: the freeze must catch pooled connections too
            assert admin.get(f"/files/{file_id}").status_code == 200

        with frozen(postmaster_pid(own_postgres)):
            results = timed_all(requests_of(server, admin, file_id, setup.customer_id))
        assert_bounded_503s(results)

        # Thawed: the pool replaces the connections it closed, and everything works again.
        wait_healthy(server)
        assert admin.get(f"/files/{file_id}").status_code == 200
        assert admin.get(f"/files/download/{file_id}").content == CSV
        server.stop()


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Iterator[SeaweedFS]:
    s3 = start_seaweedfs(tmp_path / "seaweed")
    try:
        yield s3
    finally:
        s3.stop()


class TestStorageFrozen:
    def test_store_requests_answer_503_in_bounded_time(
        self,
        own_seaweed: SeaweedFS,
        postgres: Postgres,
        start_filestore: ServerFactory,
    ) -> None:
        env = production_env(postgres.create_database("filestore_frozen_s3"))
        env.update(s3_env(own_seaweed))
        env.update(STORAGE_TIMEOUTS)
        setup = serve_with_a_file(start_filestore, env)
        server, admin, file_id = setup.server, setup.admin, setup.file_id

        calls = requests_of(server, admin, file_id, setup.customer_id)
        with frozen(own_seaweed.process.pid):
            results = timed_all(calls)
        metadata = {name: results.pop(name) for name in list(results) if "metadata" in name}
        results.pop("login")
        assert_bounded_503s(results)
        # Metadata lives in PostgreSQL: served all along.
        assert {status for status, _ in metadata.values()} == {200}, metadata

        wait_healthy(server)
        assert admin.get(f"/files/download/{file_id}").content == CSV
        server.stop()


class TestStorageFrozenMidUpload:
    def test_upload_in_flight_answers_503_in_bounded_time(
        self, own_seaweed: SeaweedFS, postgres: Postgres, start_filestore: ServerFactory
    ) -> None:
        env = production_env(postgres.create_database("filestore_frozen_midway"))
        env.update(s3_env(own_seaweed))
        env.update(STORAGE_TIMEOUTS)
        env["MAX_FILE_SIZE"] = str(64 * 1024 * 1024)
        server = start_filestore(env)
        admin = server.admin()
        customer_id = int(admin.new_customer()["id"])
        boundary = "frozen-midway"
        chunk = b"a,b,c,d,e,f,g,h\n" * 65536  # 1 MiB of CSV
        froze_at: list[float] = []

        def body() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="customer_id"\r\n\r\n'
                f"{customer_id}\r\n--{boundary}\r\n"
                'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            for n in range(32):
                if n == 10:
                    for pid in process_tree(own_seaweed.process.pid):
                        os.kill(pid, signal.SIGSTOP)
                    froze_at.append(time.monotonic())
                yield chunk
            yield f"\r\n--{boundary}--\r\n".encode()

        try:
            response = admin.http.post(
                "/files/upload",
                content=body(),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                timeout=120,
            )
            answered = time.monotonic()
        finally:
            for pid in process_tree(own_seaweed.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "storage_unavailable"
        assert answered - froze_at[0] < BOUND * 2, f"took {answered - froze_at[0]:.1f}s"
        server.stop()
