"""Exactly-once imports under `kill -9`, and concurrent imports of overlapping files.

A real `filestore worker` process is SIGKILLed at random points of a big import (during the
prescan, between batches, in the middle of a batch's transaction or its password hashing), a
new worker is started each time, and the stalled job must be found and resumed by the periodic
retry without anyone touching it. At the end the customers table is compared with the file:
every valid row's e-mail exactly once, no invalid row, and counters that add up.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Postgres, ServerFactory, Workers
from tests.fixtures.live import Api, LiveServer, WorkerProcess, production_env
from tests.fixtures.servers import SeaweedFS, s3_env
from tests.imports.support import FINISHED, get_job, query, start_import, tag, upload_csv

HEADER = ["full_name", "email", "phone", "city", "password"]
PICKUP_LIMIT = 60.0  # a dead worker's job must be running again within a minute

log = logging.getLogger(__name__)


@dataclass
class Expected:
    """What a correct import of a generated file leaves behind."""

    content: bytes
    total: int = 0
    first_name: dict[str, str] = field(default_factory=dict)  # lower(email) -> full_name
    invalid_emails: set[str] = field(default_factory=set)
    invalid_lines: list[int] = field(default_factory=list)
    duplicate_rows: int = 0
    passwords: dict[str, str] = field(default_factory=dict)


def generate(
    t: str,
    rows: int,
    *,
    start: int = 0,
    rng: random.Random,
    password_every: int = 0,
    upper_from: int | None = None,
) -> Expected:
    """`rows` customer rows with e-mails `c<i>-<t>@example.com` for i in start..start+rows,
    about 4% invalid rows of four kinds, and about 2% extra rows that duplicate an earlier
    e-mail (maybe many batches back) in another case. Valid rows have a quoted newline in
    their city, so records and lines differ. E-mails from `upper_from` on are upper case."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    expected = Expected(content=b"")
    line = 0
    emitted: list[str] = []

    def emit(cells: list[str]) -> int:
        """Write a row; returns its line number."""
        nonlocal line
        writer.writerow(cells)
        first = line + 1
        line += 1 + sum(cell.count("\n") for cell in cells)
        return first

    emit(HEADER)
    for i in range(start, start + rows):
        email = f"c{i}-{t}@example.com"
        if upper_from is not None and i >= upper_from:
            email = email.upper()
        name = f"Customer {i}"
        password = f"Pw-{t}-{i}-z!" if password_every and i % password_every == 0 else ""
        if i % 53 == 0 and emitted:
            emit([f"Duplicate {i}", rng.choice(emitted).swapcase(), "555", "X", ""])
            expected.duplicate_rows += 1
            expected.total += 1
        kind = i % 97
        invalid = {
            13: [name, f"c{i}-{t}-at-example.com", "555", "X", password],
            31: ["", email, "555", "X", password],
            47: [name, email, "555-CALL", "X", password],
            71: [name, email, "555"],
        }.get(kind)
        expected.total += 1
        if invalid is not None:
            expected.invalid_lines.append(emit(invalid))
            expected.invalid_emails.add(email.lower())
            continue
        emit([name, email, f"+1 (555) {i:07d}", "Anytown\nNorth", password])
        expected.first_name[email.lower()] = name
        if password:
            expected.passwords[email.lower()] = password
        emitted.append(email)
    expected.content = buffer.getvalue().encode()
    return expected


def live_processes_in_group(pgid: int) -> list[int]:
    """Pids of the non-zombie processes of a process group (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def job_row(server: LiveServer, job_id: str) -> dict[str, Any]:
    [row] = query(
        server,
        "SELECT status::text, attempts, processed_rows, total_rows "
        "FROM background_jobs WHERE id = %s",
        (job_id,),
    )
    return dict(zip(("status", "attempts", "processed", "total"), row, strict=True))


def wait_until(read: Any, done: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: still {value} after {timeout}s"
        time.sleep(0.1)


@dataclass
class Cluster:
    """One API server (production mode, S3, no in-process worker) and its worker processes."""

    server: LiveServer
    registry: Workers
    running: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, concurrency: int = 2) -> WorkerProcess:
        worker = self.registry.start(self.server, concurrency=concurrency)
        self.running.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.running:
            worker.stop()
        self.running.clear()


@pytest.fixture(scope="module")
def cluster(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory, workers: Workers
) -> Iterator[Cluster]:
    env = production_env(postgres.create_database("filestore_reliability"))
    env["MAX_FILE_SIZE"] = str(32 * 1024 * 1024)
    env["FILESTORE_IN_PROCESS_WORKER"] = "false"
    env.update(s3_env(seaweed))
    cluster = Cluster(start_filestore(env), workers)
    yield cluster
    cluster.stop_workers()


def check_customers(
    server: LiveServer, t: str, expected_emails: dict[str, str], invalid: set[str], *, logins: int
) -> None:
    """Every expected e-mail exactly once with the name of its first row, nothing else, and a
    customer user for each of the `logins` imported customers that had a password (the others
    get theirs when a reset link is first asked for)."""
    rows = query(
        server, "SELECT lower(email), full_name FROM customers WHERE email ILIKE %s", (f"%-{t}@%",)
    )
    emails = [email for email, _ in rows]
    assert len(emails) == len(set(emails)), "an e-mail was imported twice"
    found = dict(rows)
    missing = set(expected_emails) - set(found)
    extra = set(found) - set(expected_emails)
    assert not missing, f"{len(missing)} valid rows lost, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} unexpected customers, e.g. {sorted(extra)[:5]}"
    assert not invalid & set(found)
    wrong = {e: (found[e], n) for e, n in expected_emails.items() if found[e] != n}
    assert not wrong, f"first occurrence did not win: {list(wrong.items())[:5]}"
    [(users, distinct)] = query(
        server,
        "SELECT count(*), count(DISTINCT u.customer_id) FROM users u "
        "JOIN customers c ON c.id = u.customer_id WHERE c.email ILIKE %s",
        (f"%-{t}@%",),
    )
    assert users == distinct == logins


def check_job(
    server: LiveServer,
    api: Api,
    job_id: str,
    *,
    total: int,
    successful: int,
    failed: int,
    skipped: int,
) -> dict[str, Any]:
    job = get_job(api, job_id)
    assert job["status"] == "completed", job
    assert (job["total_rows"], job["processed_rows"]) == (total, total)
    assert (job["successful_rows"], job["failed_rows"], job["skipped_rows"]) == (
        successful,
        failed,
        skipped,
    )
    assert job["successful_rows"] + job["failed_rows"] + job["skipped_rows"] == total
    # Row errors are committed with their batch too: each failed row exactly once.
    [(errors, distinct_rows)] = query(
        server,
        "SELECT count(*), count(DISTINCT row) FROM import_row_errors "
        "WHERE job_id = %s AND NOT is_warning",
        (job_id,),
    )
    assert errors == distinct_rows == failed
    log_rows = [e["row"] for e in job["error_log"]]
    assert len(log_rows) == len(set(log_rows)) == min(failed, 1000)
    return job


def test_kill_9_at_random_points_loses_and_doubles_nothing(
    cluster: Cluster, record_property: Callable[[str, object], None]
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    log.info("random seed %s", seed)
    t = tag()
    expected = generate(t, 30_000, rng=rng, password_every=100)
    server = cluster.server
    api = server.admin()
    # Some e-mails of the file exist already: skipped, and their customers left as they were.
    pre_existing = rng.sample(sorted(expected.first_name), 15)
    for email in pre_existing:
        api.new_customer(full_name="Was Here First", email=email)

    began = time.monotonic()
    file_id = upload_csv(api, expected.content, "big-customers.csv")
    response = start_import(api, file_id)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    # Production mode: the API process runs no jobs; they wait for a `filestore worker`.
    time.sleep(1)
    assert job_row(server, job_id)["status"] == "pending"
    worker = cluster.start_worker()
    wait_until(
        lambda: job_row(server, job_id),
        lambda j: j["status"] == "processing",
        timeout=30,
        what="job start",
    )

    # Kill 1 anywhere early (prescan or first batch); kills 2 and 3 at random progress points,
    # each after a random delay so it lands at any moment of a batch.
    thresholds = [0.0, rng.uniform(0.15, 0.35), rng.uniform(0.45, 0.65)]
    kills: list[dict[str, Any]] = []
    for threshold in thresholds:
        at = threshold * expected.total
        state = wait_until(
            lambda: job_row(server, job_id),
            lambda j, at=at: j["status"] in FINISHED or j["processed"] >= at,
            timeout=120,
            what="progress",
        )
        if state["status"] in FINISHED:
            break
        time.sleep(rng.uniform(0.0, 1.5))
        worker.kill_hard()
        killed_at = time.monotonic()
        dead = worker.pid
        state = job_row(server, job_id)
        kills.append(
            {
                "after_s": round(killed_at - began, 1),
                "processed": state["processed"],
                "attempts": state["attempts"],
            }
        )
        if state["status"] in FINISHED:
            break
        assert state["status"] == "processing"  # the dead worker's job is stuck as it was...
        worker = cluster.start_worker()
        # The killed worker's hash-pool processes notice their parent is gone and exit.
        wait_until(
            lambda pgid=dead: live_processes_in_group(pgid),
            lambda pids: not pids,
            timeout=15,
            what="orphaned hash-pool processes",
        )
        # ... until the periodic retry finds it by the dead worker's missing heartbeat.
        wait_until(
            lambda: job_row(server, job_id),
            lambda j, a=state["attempts"]: j["attempts"] > a or j["status"] in FINISHED,
            timeout=PICKUP_LIMIT + 15,
            what="resumption after kill -9",
        )
        kills[-1]["picked_up_after_s"] = round(time.monotonic() - killed_at, 1)

    final = wait_until(
        lambda: job_row(server, job_id),
        lambda j: j["status"] in FINISHED,
        timeout=180,
        what="job end",
    )
    elapsed = round(time.monotonic() - began, 1)
    log.info("kills: %s; import with kills took %ss", kills, elapsed)
    record_property("kills", kills)
    record_property("seconds", elapsed)
    mid_import = [k for k in kills if k["processed"] < expected.total]
    assert len(mid_import) >= 2, f"the import outran the kills: {kills}"
    for kill in kills:
        assert kill.get("picked_up_after_s", 0) < PICKUP_LIMIT, kills
    assert final["attempts"] >= len(mid_import) + 1

    valid = {e: n for e, n in expected.first_name.items() if e not in set(pre_existing)}
    check_job(
        server,
        api,
        job_id,
        total=expected.total,
        successful=len(valid),
        failed=len(expected.invalid_lines),
        skipped=expected.duplicate_rows + len(pre_existing),
    )
    job = get_job(api, job_id)
    assert [e["row"] for e in job["error_log"]] == expected.invalid_lines[:1000]
    pre = query(
        server, "SELECT full_name FROM customers WHERE lower(email) = ANY(%s)", (pre_existing,)
    )
    assert {name for (name,) in pre} == {"Was Here First"}
    check_customers(
        server,
        t,
        {**valid, **dict.fromkeys(pre_existing, "Was Here First")},
        expected.invalid_emails,
        logins=len([e for e in expected.passwords if e in valid]),
    )
    # The passwords of rows committed before and after the kills were hashed and stored once.
    hashed = query(
        server,
        "SELECT count(*) FROM users WHERE email ILIKE %s AND "
        "password_hash LIKE '$argon2id$%%' AND NOT password_reset_required",
        (f"%-{t}@%",),
    )
    assert hashed == [(len([e for e in expected.passwords if e in valid]),)]
    sample = rng.choice([e for e in expected.passwords if e in valid])
    assert Api(server.base_url).login(sample, expected.passwords[sample])


def test_overlapping_imports_at_the_same_time_leave_each_email_once(cluster: Cluster) -> None:
    cluster.stop_workers()
    for _ in range(2):
        cluster.start_worker(concurrency=1)
    rng = random.Random(7)
    t = tag()
    # A: c0..c19999; B: c10000..c29999, half of the overlap in upper case.
    a = generate(t, 20_000, rng=rng, password_every=200)
    b = generate(t, 20_000, start=10_000, rng=rng, password_every=200, upper_from=15_000)
    server = cluster.server
    api = server.admin()
    files = [upload_csv(api, a.content, "a.csv"), upload_csv(api, b.content, "b.csv")]
    jobs = [start_import(api, f).json()["job_id"] for f in files]
    for job_id in jobs:
        wait_until(
            lambda j=job_id: get_job(api, j),
            lambda j: j["status"] in FINISHED,
            timeout=150,
            what="overlapping import",
        )
    done = [get_job(api, j) for j in jobs]
    for job in done:
        assert job["status"] == "completed", job
    # They did run at the same time (one worker each).
    assert done[0]["started_at"] < done[1]["finished_at"]
    assert done[1]["started_at"] < done[0]["finished_at"]

    valid = {**a.first_name}
    for email, name in b.first_name.items():
        valid.setdefault(email, name)
    invalid = (a.invalid_emails | b.invalid_emails) - set(valid)
    rows = query(
        server, "SELECT lower(email), full_name FROM customers WHERE email ILIKE %s", (f"%-{t}@%",)
    )
    found = [email for email, _ in rows]
    assert len(found) == len(set(found)), "an e-mail was imported twice"
    assert set(found) == set(valid)
    assert not invalid & set(found)
    # Whichever import won an overlapping e-mail, it wrote that file's first row for it.
    names = dict(rows)
    for email in valid:
        assert names[email] in {a.first_name.get(email), b.first_name.get(email)}
    successful = sum(j["successful_rows"] for j in done)
    assert successful == len(valid)
    valid_rows = sum(len(x.first_name) + x.duplicate_rows for x in (a, b))
    assert sum(j["skipped_rows"] for j in done) == valid_rows - len(valid)
    for job, expected in zip(done, (a, b), strict=True):
        assert job["failed_rows"] == len(expected.invalid_lines)
        assert job["total_rows"] == job["processed_rows"] == expected.total
        assert job["successful_rows"] + job["failed_rows"] + job["skipped_rows"] == expected.total
    # A login for each customer imported with a password (both files give c<i> the same one),
    # none for the others.
    [(users,)] = query(
        server,
        "SELECT count(*) FROM users u JOIN customers c "
        "ON c.id = u.customer_id WHERE c.email ILIKE %s",
        (f"%-{t}@%",),
    )
    assert users == len({e for x in (a, b) for e in x.passwords if e in valid})
