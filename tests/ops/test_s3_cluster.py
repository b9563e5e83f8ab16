"""A volume server of the S3 cluster dies in the middle of a storm of uploads and downloads.

Filestore runs in production mode on a SeaweedFS cluster (three volume servers, replication
001: two copies of every volume). During 40 concurrent uploads of 1-3 MiB and downloads of
files stored before, the volume server holding the most volumes is SIGKILLed. What a user and
an operator must see: every upload that got a 201 reads back byte for byte, every other one
got a JSON 503 and left no row, `/health` says storage ok exactly when an upload works, and
once the server is back one cleanup sweep leaves the buckets and the table in agreement (no
orphan either way). With two of three down no write can be placed at all: uploads get a JSON
503 and leave nothing behind.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from filestore.db import libpq_url
from tests.conftest import Postgres, ServerFactory
from tests.fixtures.cluster import SeaweedCluster
from tests.fixtures.inspect import StoreInspector
from tests.fixtures.live import Api, LiveServer, clean_environ, production_env
from tests.fixtures.servers import own_buckets, s3_env
from tests.fixtures.storm import (
    HealthProbe,
    MiB,
    Outcome,
    is_error_body,
    json_or_none,
    payload,
    run_storm,
    sha256,
    verify_all,
)

log = logging.getLogger(__name__)

STORED_BEFORE = 8  # files stored before the storm, each downloaded 4 times in it
KILL_AFTER = 10  # requests finished before the volume server is killed
GRACE_SECONDS = 2


@pytest.fixture(scope="module")
def cluster_server(
    postgres: Postgres, seaweed_cluster: SeaweedCluster, start_filestore: ServerFactory
) -> LiveServer:
    """A production-mode server on the cluster, with buckets of its own (other servers of the
    session may share the cluster: their objects would be orphans to this one)."""
    prefix = f"storm{uuid.uuid4().hex[:6]}"
    env = production_env(postgres.create_database("filestore_cluster"))
    env.update(own_buckets(prefix))
    env.update(s3_env(seaweed_cluster))
    env.update(
        {
            "MAX_FILE_SIZE": str(8 * MiB),
            "ORPHAN_GRACE_SECONDS": str(GRACE_SECONDS),
            "FILE_CLEANUP_INTERVAL_SECONDS": "86400",
        }
    )
    return start_filestore(env)


def sql(server: LiveServer, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(server.env["DATABASE_URL"]), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


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
            outcomes, kill_time = run_storm(
                server,
                admin.token,
                customer,
                stored,
                fault=cluster.volume(victim).kill,
                after=KILL_AFTER,
            )
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


def test_no_volume_server_left_to_write_to(
    cluster_server: LiveServer, seaweed_cluster: SeaweedCluster
) -> None:
    """Two of three volume servers down: replication 001 cannot place a write anywhere.
    Uploads fail as JSON 503 and leave nothing once the servers are back and swept.

    Slow (~35 s): SeaweedFS retries for ~30 s before it answers, and Filestore's storage read
    timeout is 30 s."""
    server, cluster = cluster_server, seaweed_cluster
    admin = server.admin()
    assert admin.token is not None
    customer = int(admin.new_customer()["id"])
    store = StoreInspector(server, cluster)
    before = store.snapshot()
    victims = [i for i in range(len(cluster.volumes)) if i != cluster.busiest_volume_server()]
    started = time.monotonic()

    def upload(index: int) -> tuple[str, int, Any]:
        name = f"nowhere-{index}.pdf"
        response = server.api(admin.token).upload(
            payload(2000 + index, 2 * MiB),
            name,
            content_type="application/pdf",
            customer_id=customer,
        )
        return name, response.status_code, json_or_none(response)

    try:
        for index in victims:
            cluster.volume(index).kill()
        cluster.wait_for_volume_servers(1)
        with HealthProbe(server) as health, ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(upload, range(3)))
        seconds = time.monotonic() - started
        log.info(
            "writes impossible: %s after %.1f s; /health said %s",
            answers,
            seconds,
            sorted({(code, storage) for _, code, storage in health.samples}),
        )
        for name, status, body in answers:
            assert status == 503, (name, status, body)
            assert is_error_body(body), body
            assert body["code"] == "storage_unavailable", body
        assert seconds < 60
        names = [name for name, _, _ in answers]
        assert sql(server, "SELECT id FROM file_uploads WHERE filename = ANY(%s)", (names,)) == []
    finally:
        for index in victims:
            cluster.volume(index).restart()
        cluster.wait_for_volume_servers(3)

    # Whatever the store finished after Filestore gave up is swept: nothing new remains.
    time.sleep(GRACE_SECONDS + 0.5)
    report = run_cleanup(server)
    log.info("cleanup after the failed writes: %s", json.dumps(report))
    store.assert_nothing_new(before)
