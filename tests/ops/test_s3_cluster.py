"""A volume server of the S3 cluster dies in the middle of a storm of uploads and downloads.

Filestore runs in production mode on a SeaweedFS cluster (three volume servers, replication
001: two copies of every volume). During 40 concurrent uploads of 1-3 MiB and downloads of
files stored before, the volume server holding the most volumes is SIGKILLed. What a user and
an operator must see: every upload that got a 201 reads back byte for byte, every other one
got a JSON 503 and left no row, `/health` tells the truth, and once the server is back one
cleanup sweep leaves the buckets and the table in agreement (no orphan either way).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from filestore.db import libpq_url
from tests.conftest import Postgres, ServerFactory
from tests.fixtures.cluster import SeaweedCluster
from tests.fixtures.inspect import StoreInspector
from tests.fixtures.live import Api, LiveServer, clean_environ, production_env
from tests.fixtures.servers import s3_env

log = logging.getLogger(__name__)

MiB = 1024 * 1024
UPLOADS = 40
STORED_BEFORE = 8
DOWNLOADS_EACH = 4  # downloads of each file stored before the storm, mixed into it
THREADS = 8
KILL_AFTER = 10  # requests finished before the volume server is killed
GRACE_SECONDS = 2


def payload(seed: int, size: int) -> bytes:
    """A PDF-looking file of `size` bytes that no other seed produces."""
    header = b"%PDF-1.4\n"
    return header + random.Random(seed).randbytes(size - len(header))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def cluster_server(
    postgres: Postgres, seaweed_cluster: SeaweedCluster, start_filestore: ServerFactory
) -> LiveServer:
    """A production-mode server on the cluster, with buckets of its own (other servers of the
    session may share the cluster: their objects would be orphans to this one)."""
    prefix = f"storm{uuid.uuid4().hex[:6]}"
    env = production_env(postgres.create_database("filestore_cluster"))
    env.update(s3_env(seaweed_cluster))
    env.update(
        {
            "MAX_FILE_SIZE": str(8 * MiB),
            "MINIO_BUCKET_CUSTOMER_UPLOADS": f"{prefix}-customer-uploads",
            "MINIO_BUCKET_TICKET_MEDIA": f"{prefix}-ticket-media",
            "MINIO_BUCKET_CSV_IMPORTS": f"{prefix}-csv-imports",
            "MINIO_BUCKET_BACKUPS": f"{prefix}-backups",
            "MINIO_BUCKET_TEMP": f"{prefix}-temp",
            "ORPHAN_GRACE_SECONDS": str(GRACE_SECONDS),
            "FILE_CLEANUP_INTERVAL_SECONDS": "86400",
        }
    )
    return start_filestore(env)


@dataclass
class Outcome:
    """One request of the storm."""

    kind: str  # "upload" or "download"
    name: str
    expected_sha: str
    started: float
    ended: float = 0.0
    status: int = 0
    body: Any = None
    file_id: int | None = None
    got_sha: str | None = None
    error: str | None = None


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def is_error_body(body: Any) -> bool:
    return isinstance(body, dict) and set(body) >= {"detail", "code"}


def sql(server: LiveServer, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(server.env["DATABASE_URL"]), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


class HealthProbe:
    """Polls `/health` in a thread; `samples` are (time, status code, storage field)."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.samples: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base_url, timeout=15) as client:
            while not self._stop.is_set():
                response = client.get("/health")
                body = json_or_none(response) or {}
                self.samples.append(
                    (time.monotonic(), response.status_code, str(body.get("storage")))
                )
                self._stop.wait(0.25)


def downloaded_sha(api: Api, file_id: int) -> tuple[int, str | None, Any]:
    response = api.get(f"/files/download/{file_id}")
    if response.status_code == 200:
        return 200, sha256(response.content), None
    return response.status_code, None, json_or_none(response)


def verify_all(server: LiveServer, token: str, expected: dict[int, str]) -> None:
    """Download every file in `expected` (4 at a time) and compare SHA-256."""
    local = threading.local()

    def check(item: tuple[int, str]) -> tuple[int, int, bool]:
        if not hasattr(local, "api"):
            local.api = server.api(token)
        status, digest, _ = downloaded_sha(local.api, item[0])
        return item[0], status, digest == item[1]

    with ThreadPoolExecutor(4) as pool:
        bad = [result for result in pool.map(check, expected.items()) if not result[2]]
    assert not bad, f"(file id, status, sha ok) of files not read back intact: {bad}"


def run_storm(
    server: LiveServer,
    cluster: SeaweedCluster,
    token: str,
    customer: int,
    stored: dict[int, str],
    victim: int,
) -> tuple[list[Outcome], float]:
    """40 uploads and the downloads in a shuffled mix on 8 threads; the volume server
    `victim` is SIGKILLed once KILL_AFTER requests have finished. Returns outcomes and the
    moment of the kill."""
    local = threading.local()
    finished = 0
    lock = threading.Lock()
    killed_at = threading.Event()
    kill_time = [0.0]

    def client() -> Api:
        if not hasattr(local, "api"):
            local.api = server.api(token)
        api: Api = local.api
        return api

    def done() -> None:
        nonlocal finished
        with lock:
            finished += 1
            kill_now = finished == KILL_AFTER
        if kill_now:
            kill_time[0] = time.monotonic()
            cluster.volume(victim).kill()
            killed_at.set()

    def upload(index: int) -> Outcome:
        size = MiB + (index * 389_017) % (2 * MiB)  # 1-3 MiB, all different
        content = payload(1000 + index, size)
        outcome = Outcome("upload", f"storm-{index}.pdf", sha256(content), time.monotonic())
        try:
            response = client().upload(
                content, outcome.name, content_type="application/pdf", customer_id=customer
            )
            outcome.status, outcome.body = response.status_code, json_or_none(response)
            if response.status_code == 201:
                outcome.file_id = int(outcome.body["id"])
        except httpx.HTTPError as exc:
            outcome.error = repr(exc)
        outcome.ended = time.monotonic()
        done()
        return outcome

    def download(file_id: int) -> Outcome:
        outcome = Outcome("download", str(file_id), stored[file_id], time.monotonic())
        try:
            outcome.status, outcome.got_sha, outcome.body = downloaded_sha(client(), file_id)
        except httpx.HTTPError as exc:
            outcome.error = repr(exc)
        outcome.ended = time.monotonic()
        done()
        return outcome

    tasks: list[tuple[Any, int]] = [(upload, i) for i in range(UPLOADS)]
    tasks += [(download, file_id) for file_id in stored for _ in range(DOWNLOADS_EACH)]
    random.Random(13).shuffle(tasks)
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda task: task[0](task[1]), tasks))
    assert killed_at.is_set()
    return outcomes, kill_time[0]


def run_cleanup(server: LiveServer) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "filestore", "cleanup"],
        env=clean_environ() | server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The report is the JSON document on stderr, after the log lines on stdout.
    report: dict[str, Any] = json.loads(result.stderr[result.stderr.index("{") :])
    return report


def store_files_before(admin: Api, customer: int) -> dict[int, str]:
    """Files stored before the storm (read during it): id -> SHA-256."""
    stored: dict[int, str] = {}
    for index in range(STORED_BEFORE):
        content = payload(index, MiB + index * 100_003)
        response = admin.upload(
            content, f"before-{index}.pdf", content_type="application/pdf", customer_id=customer
        )
        assert response.status_code == 201, response.text
        stored[int(response.json()["id"])] = sha256(content)
    return stored


def check_storm(server: LiveServer, outcomes: list[Outcome], kill_time: float) -> None:
    """A 201 is a completed row, anything else a JSON 503 and no row; a download is the right
    bytes or a JSON 503; the kill happened while requests were in flight."""
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes if o.error]
    assert any(o.started < kill_time < o.ended for o in outcomes), "kill not mid-storm"
    uploads = [o for o in outcomes if o.kind == "upload"]
    failed = [o for o in uploads if o.status != 201]
    for outcome in failed:
        assert outcome.status == 503, (outcome.status, outcome.body)
        assert is_error_body(outcome.body), outcome.body
    rows = dict(sql(server, "SELECT filename, upload_status::text FROM file_uploads"))
    assert {o.name for o in failed}.isdisjoint(rows), "a failed upload left a row"
    assert all(rows[o.name] == "completed" for o in uploads if o.status == 201)
    assert "uploading" not in rows.values()
    for outcome in outcomes:
        if outcome.kind == "download" and outcome.status == 200:
            assert outcome.got_sha == outcome.expected_sha, outcome.name
        elif outcome.kind == "download":
            assert outcome.status == 503, (outcome.status, outcome.body)
            assert is_error_body(outcome.body), outcome.body


def summary(outcomes: list[Outcome], health: HealthProbe, kill_time: float) -> str:
    """What clients and /health saw: (status, code) counts per kind, /health after the kill."""
    counts: dict[str, int] = {}
    for o in outcomes:
        key = f"{o.kind} {o.status} {(o.body or {}).get('code', '') if o.status >= 400 else ''}"
        counts[key.strip()] = counts.get(key.strip(), 0) + 1
    after_kill = sorted(
        {(code, storage) for at, code, storage in health.samples if at >= kill_time}
    )
    return json.dumps({"requests": counts, "health_after_kill": after_kill})


def test_volume_server_killed_mid_storm(
    cluster_server: LiveServer, seaweed_cluster: SeaweedCluster
) -> None:
    server, cluster = cluster_server, seaweed_cluster
    admin = server.admin()
    assert admin.token is not None
    customer = int(admin.new_customer()["id"])
    stored = store_files_before(admin, customer)
    victim = cluster.busiest_volume_server()
    started = time.monotonic()

    try:
        with HealthProbe(server) as health:
            outcomes, kill_time = run_storm(server, cluster, admin.token, customer, stored, victim)
        log.info(
            "storm (%.1f s): %s", time.monotonic() - started, summary(outcomes, health, kill_time)
        )
        cluster.wait_for_volume_servers(2)
        check_storm(server, outcomes, kill_time)

        # With the volume server still down, everything acknowledged reads back intact.
        expected = stored | {o.file_id: o.expected_sha for o in outcomes if o.file_id is not None}
        verify_all(server, admin.token, expected)

        # /health is honest during the outage: "storage ok" exactly when an upload works.
        health_now = admin.get("/health").json()
        probe = payload(99, MiB)
        response = admin.upload(
            probe, "probe.pdf", content_type="application/pdf", customer_id=customer
        )
        assert (health_now["storage"] == "ok") == (response.status_code == 201), (
            health_now,
            response.text,
        )
        if response.status_code == 201:
            expected[int(response.json()["id"])] = sha256(probe)
        last_upload = time.monotonic()
    finally:
        cluster.volume(victim).restart()
        cluster.wait_for_volume_servers(3)

    # Back to three: one sweep, then the table and the buckets agree exactly.
    assert admin.get("/health").json()["storage"] == "ok"
    time.sleep(max(0.0, GRACE_SECONDS + 0.5 - (time.monotonic() - last_upload)))
    report = run_cleanup(server)
    log.info("cleanup: %s", json.dumps(report))
    assert report["errors"] == 0
    store = StoreInspector(server, cluster)
    completed = {
        f"{bucket}/{key}"
        for bucket, key in sql(
            server, "SELECT bucket, object_key FROM file_uploads WHERE upload_status = 'completed'"
        )
    }
    assert store.objects() == completed
    assert store.multipart_uploads() == frozenset()
    assert store.row_count() == len(completed) == len(expected)
    verify_all(server, admin.token, expected)
    log.info("storm to verified sweep: %.1f s", time.monotonic() - started)
