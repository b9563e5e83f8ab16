"""A worker inside the API process that dies is logged, reported by `/health`, and restarted.

The server reaches PostgreSQL through a `TcpProxy`. Cutting it kills procrastinate's worker
for real (its LISTEN connection cannot reconnect, so it stops itself; or fetching a job
fails). Once PostgreSQL is back the worker must run jobs again without anyone restarting the
server.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import LiveServer, production_env
from tests.fixtures.servers import TcpProxy
from tests.imports.support import start_import, tag, upload_csv, wait_job


@dataclass
class Crashable:
    server: LiveServer
    pg_proxy: TcpProxy


@pytest.fixture(scope="module")
def crashable(
    postgres: Postgres, start_filestore: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Crashable]:
    embedded = postgres.embedded
    if embedded is None or embedded.tcp_port is None:
        pytest.skip("needs the embedded PostgreSQL's TCP port to put a proxy in front of it")
    database_url = postgres.create_database("filestore_worker_crash")
    database = urllib.parse.urlsplit(database_url).path.lstrip("/")
    with TcpProxy("127.0.0.1", embedded.tcp_port) as pg_proxy:
        env = production_env(embedded.tcp_url_for(database, port=pg_proxy.port))
        env["FILESTORE_DATA_DIR"] = str(tmp_path_factory.mktemp("worker-crash"))
        env["FILESTORE_IN_PROCESS_WORKER"] = "true"
        server = start_filestore(env)
        try:
            yield Crashable(server, pg_proxy)
        finally:
            server.stop()


def health(server: LiveServer) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.base_url}/health", timeout=10)
    return response.status_code, response.json()


def poll(check: Callable[[], bool], *, timeout: float, what: str, seen: object = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f}s (last seen: {seen})"
        time.sleep(0.25)


class TestInProcessWorkerCrash:
    def test_crash_is_logged_reported_and_the_worker_restarts(self, crashable: Crashable) -> None:
        server = crashable.server
        admin = server.admin()
        poll(
            lambda: health(server)[1]["worker"]["status"] == "ok",
            timeout=30,
            what="the worker never sent a heartbeat",
        )

        crashable.pg_proxy.cut()
        try:
            seen: dict[str, Any] = {}

            def worker_down() -> bool:
                status, body = health(server)
                seen.update(body)
                return status == 503 and body["worker"]["status"] == "down"

            # The worker learns of the cut when its pool stops waiting for a connection:
            # DB_STATEMENT_TIMEOUT_SECONDS (10 s; it was psycopg_pool's 30 s, and the test
            # then missed 30 s once), so about 10 s here.
            poll(worker_down, timeout=25, what="/health never reported the worker down", seen=seen)
            assert seen["worker"]["in_process"]["crashes"] >= 1
        finally:
            crashable.pg_proxy.restore()

        def restarted() -> bool:
            status, body = health(server)
            return status == 200 and body["worker"]["in_process"]["status"] == "running"

        poll(restarted, timeout=90, what="the worker was not restarted")

        # It really runs jobs again.
        csv = f"full_name,email\nAfter Crash,after-{tag()}@example.com\n".encode()
        started = start_import(admin, upload_csv(admin, csv), mapping={"full_name": "full_name"})
        assert started.status_code == 202, started.text
        job = wait_job(admin, started.json()["job_id"], timeout=60)
        assert job["status"] == "completed", job
        assert job["successful_rows"] == 1

        events = []
        for line in server.log().splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        crashed = [e for e in events if isinstance(e, dict) and e.get("event") == "worker.crashed"]
        assert crashed, "the crash was not logged"
        assert "Traceback" in crashed[0].get("exception", ""), crashed[0]
