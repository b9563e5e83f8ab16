"""Two `filestore serve` and two `filestore worker` processes on one PostgreSQL and one S3 store
(a single SeaweedFS `weed mini`), started all at once on a fresh database, as an orchestrator
does: every startup step (migrations, buckets, the ADMIN_PASSWORD admin, periodic tasks) races
and no process exits because another won.

Then, in one run (about 1.5 minutes, most of it the 20 s a dead worker's job waits before it is
declared stalled): uploads through both APIs at once, three imports at once (two of the same
file) with the worker running one SIGKILLed mid-import, cleanup sweeps on the workers and two
`filestore cleanup` at once, a worker SIGTERMed mid-import, and an API SIGTERMed with an upload
in flight. Every e-mail once, every counter right, every expired file swept once, no two sweeps
or runs of one import at the same time, nothing left stuck.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Postgres
from tests.fixtures.live import (
    Api,
    LiveServer,
    SlowUpload,
    WorkerProcess,
    clean_environ,
    production_env,
    spawn_worker,
)
from tests.fixtures.live import start_server as start_live_server
from tests.fixtures.servers import SeaweedFS, own_buckets, s3_env
from tests.imports.support import FINISHED, get_job, query, start_import, upload_csv
from tests.imports.test_reliability import generate

pytestmark = pytest.mark.timeout(300)

STALLED_AFTER = 20  # jobs.tasks.STALLED_AFTER_SECONDS
DRAIN_SECONDS = 20


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.2)


def finished(api: Api, job_id: str, *, timeout: float) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = get_job(api, job_id)
        return job if job["status"] in FINISHED else None

    job: dict[str, Any] = wait_for(check, timeout=timeout, what=f"import {job_id} finishing")
    return job


class Watch:
    """Polls the database in the background for what must never be seen at any instant."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for lock, running in query(
                self.server,
                "SELECT lock, count(*) FROM procrastinate_jobs WHERE status = 'doing' "
                "AND lock IS NOT NULL GROUP BY lock HAVING count(*) > 1",
            ):
                self.seen.append(f"{running} runs of {lock} at once")
            time.sleep(0.1)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def fleet(
    postgres: Postgres, seaweed: SeaweedFS, tmp_path: Path
) -> Iterator[tuple[list[LiveServer], list[WorkerProcess], dict[str, str]]]:
    env = production_env(postgres.create_database("filestore_many"))
    env.update(s3_env(seaweed))
    env.update(own_buckets(f"many{uuid.uuid4().hex[:6]}"))
    env.update(
        {
            "FILESTORE_IN_PROCESS_WORKER": "false",
            "FILE_CLEANUP_INTERVAL_SECONDS": "1",
            "SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
            "WORKER_SHUTDOWN_SECONDS": "1",
            "MAX_FILE_SIZE": str(32 * 1024 * 1024),
            "LOG_LEVEL": "INFO",
        }
    )
    workers = [spawn_worker(env, tmp_path, f"worker-{n}") for n in range(2)]
    with ThreadPoolExecutor(2) as pool:
        servers = list(pool.map(lambda n: start_live_server(tmp_path / f"api-{n}", env), range(2)))
    try:
        yield servers, workers, env
    finally:
        for server in servers:
            server.stop()
        for worker in workers:
            worker.stop()


def test_two_apis_and_two_workers_share_one_truth(
    fleet: tuple[list[LiveServer], list[WorkerProcess], dict[str, str]], tmp_path: Path
) -> None:
    servers, workers, env = fleet
    # -- all started at once, none exited --------------------------------------------------
    assert all(worker.poll() is None for worker in workers), [w.log()[-2000:] for w in workers]
    [(admins,)] = query(servers[0], "SELECT count(*) FROM users WHERE role = 'admin'")
    assert admins == 1
    apis = [server.admin() for server in servers]  # the one admin logs in on both

    # -- uploads through both APIs at once, some expiring soon ------------------------------
    customer = apis[0].new_customer()["id"]
    expires = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()

    def upload(n: int) -> httpx.Response:
        fields: dict[str, Any] = {"customer_id": customer}
        if n % 4 == 0:
            fields["expires_at"] = expires
        return apis[n % 2].upload(f"n,e\r\nrow,{n}\r\n".encode(), f"f{n}.csv", **fields)

    with ThreadPoolExecutor(6) as pool:
        uploaded = list(pool.map(upload, range(24)))
    assert all(r.status_code == 201 for r in uploaded), [r.text for r in uploaded][:3]
    expiring = {r.json()["id"] for n, r in enumerate(uploaded) if n % 4 == 0}
    listed = {f["id"] for f in apis[1].get(f"/files/customer/{customer}").json()}
    every = {r.json()["id"] for r in uploaded}
    assert every - expiring <= listed <= every  # the expiring ones may be gone already

    # -- three imports at once (two of one file); SIGKILL the worker running one ------------
    t = uuid.uuid4().hex[:8]
    rng = random.Random(5)
    big = generate(t, 20_000, rng=rng)
    other = generate(t, 8_000, start=50_000, rng=rng)
    big_file = upload_csv(apis[0], big.content)
    other_file = upload_csv(apis[1], other.content)
    with Watch(servers[0]) as watch:
        with ThreadPoolExecutor(3) as pool:
            started = list(
                pool.map(
                    lambda args: start_import(apis[args[0]], args[1]),
                    [(0, big_file), (1, big_file), (0, other_file)],
                )
            )
        assert all(r.status_code == 202 for r in started), [r.text for r in started]
        job_ids = [r.json()["job_id"] for r in started]

        def importing_worker() -> WorkerProcess | None:
            running = query(
                servers[0],
                "SELECT count(*) FROM background_jobs WHERE job_type = 'csv_import' "
                "AND status = 'processing' AND processed_rows > 0",
            )
            if not running[0][0]:
                return None
            return next((w for w in workers if "run_customer_import" in w.log()), None)

        victim = wait_for(importing_worker, timeout=60, what="an import making progress")
        victim.kill_hard()
        survivor = next(w for w in workers if w is not victim)
        jobs = [finished(apis[1], job_id, timeout=STALLED_AFTER + 60) for job_id in job_ids]
        # -- two `filestore cleanup` at once beside the workers' own ticks ------------------
        wait_for(
            lambda: (
                {
                    row[0]
                    for row in query(
                        servers[0],
                        "SELECT id FROM file_uploads WHERE upload_status = 'expired'",
                    )
                }
                == expiring
            ),
            timeout=40,
            what="every expired file swept",
        )
        manual = [
            subprocess.Popen(
                [sys.executable, "-m", "filestore", "cleanup"],
                cwd=tmp_path,
                env={**clean_environ(), **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        assert sorted(p.wait(60) for p in manual) in ([0, 0], [0, 1])
    assert not watch.seen, watch.seen

    # Every e-mail once, every counter right.
    for job in jobs:
        assert job["status"] == "completed", job
        assert job["processed_rows"] == job["total_rows"]
        assert (
            job["successful_rows"] + job["failed_rows"] + job["skipped_rows"] == job["total_rows"]
        )
    assert jobs[0]["successful_rows"] + jobs[1]["successful_rows"] == len(big.first_name)
    assert jobs[2]["successful_rows"] == len(other.first_name)
    emails = [
        row[0]
        for row in query(
            servers[0], "SELECT lower(email) FROM customers WHERE email ILIKE %s", (f"%-{t}@%",)
        )
    ]
    assert len(emails) == len(set(emails))
    assert set(emails) == set(big.first_name) | set(other.first_name)

    # Every expired file swept once, and no two sweeps at the same time.
    sweeps = query(
        servers[0],
        "SELECT started_at, finished_at, (result->>'expired_files')::int FROM background_jobs "
        "WHERE job_type = 'file_cleanup' AND status = 'completed' ORDER BY started_at",
    )
    assert sum(expired for _, _, expired in sweeps) == len(expiring)
    for (_, first_end, _), (second_start, _, _) in itertools.pairwise(sweeps):
        assert second_start >= first_end, "two sweeps overlapped"
    for file_id in expiring:
        assert apis[1].get(f"/files/{file_id}").status_code == 404

    # -- SIGTERM a worker mid-import: it stops within WORKER_SHUTDOWN_SECONDS, the import
    #    resumes from its checkpoint on the next worker -----------------------------------
    last = generate(t, 15_000, start=100_000, rng=rng)
    response = start_import(apis[0], upload_csv(apis[0], last.content))
    last_id = response.json()["job_id"]
    wait_for(
        lambda: (
            get_job(apis[0], last_id)["processed_rows"] > 0
            or get_job(apis[0], last_id)["status"] in FINISHED
        ),
        timeout=30,
        what="the last import starting",
    )
    began = time.monotonic()
    survivor.terminate()
    survivor.wait(15)
    assert time.monotonic() - began < 10
    replacement = spawn_worker(env, tmp_path, "worker-2")
    workers.append(replacement)
    done = finished(apis[1], last_id, timeout=60)
    assert done["status"] == "completed", done
    assert done["successful_rows"] == len(last.first_name)
    assert done["processed_rows"] == done["total_rows"]

    # -- SIGTERM an API with an upload in flight: it finishes, new requests get 503 ---------
    in_flight = SlowUpload(apis[0], rows=4).start()
    time.sleep(0.5)
    servers[0].process.terminate()
    refused = wait_for(
        lambda: (
            (r := httpx.get(f"{servers[0].base_url}/health", timeout=5)).status_code == 503 and r
        ),
        timeout=5,
        what="a 503 from the draining API",
    )
    assert refused.json()["code"] == "shutting_down"
    answer = in_flight.response()
    assert answer.status_code == 201, answer.text
    assert servers[0].process.wait(DRAIN_SECONDS) == 0
    kept = answer.json()["id"]
    assert b"Slow 3" in apis[1].get(f"/files/download/{kept}").content

    # -- nothing stuck ------------------------------------------------------------------------
    assert all(w.poll() is None for w in (replacement,))
    assert servers[1].process.poll() is None
    [(stuck_files,)] = query(
        servers[1],
        "SELECT count(*) FROM file_uploads "
        "WHERE upload_status IN ('uploading', 'pending', 'verifying')",
    )
    [(stuck_jobs,)] = query(
        servers[1],
        "SELECT count(*) FROM background_jobs WHERE status IN ('pending', 'processing') "
        "AND job_type = 'csv_import'",
    )
    [(doing,)] = query(
        servers[1],
        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' "
        "AND task_name LIKE 'imports:%%'",
    )
    assert (stuck_files, stuck_jobs, doing) == (0, 0, 0)
