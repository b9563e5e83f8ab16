"""Filestore's hot queries over ten million files: p50/p99, EXPLAIN, and a loud sequential scan.

Synthesises `--files` rows of `file_uploads` (default 10,000,000) over `--files/10` customers and
`--files/5` tickets with COPY into a database of their own (`--database-url`, dropped and made
again; default an embedded PostgreSQL in a temp dir), migrated to head. Indexes are dropped for
the load and rebuilt after it, as a restore would. One customer (and one of its tickets) gets
`--heavy` files so deep pages exist; the others about ten each. About 3 % of files expire, a
tenth of those are due; 2 % are deleted.

Then, with the app's own query code (`files.reads`, `files.cleanup`, `files.orphans`,
`jobs.service`, `gauges`, `stats.service`) on its SQLAlchemy session, each query runs
`--samples` times:

* a customer's files: page 1, page 100 / 1000 by `offset` and by `cursor`;
* a ticket's files, page 1; one file's metadata (by id);
* the jobs list (`--jobs` background_jobs rows);
* the expiry sweep's select of due files (first batch and one from the middle);
* the orphan sweep's check of one batch of 1,000 keys; the stuck-upload sweep's select;
* `/metrics`' database gauges (`gauges.refresh`);
* the console's Overview over the last 30 days (`stats.service.overview`).

The listings and the metadata are the statements their routes run (`GET /files/customer/{id}`,
`GET /files/ticket/{id}`: `files.reads.read_listing`; `GET /files/{id}`:
`files.reads.read_visible_row`): the token's check (a staff user and its login session, created
here, and the claims of that login's access token, as the route's dependency hands them over)
with the owner and the page, or the file, in one statement.

The baseline, measured in the same run, is a primary-key lookup (`SELECT ... WHERE id = ?`): every
p50 is also printed as a multiple of it, beside the server-side execution time of one run
(EXPLAIN ANALYZE), which a loaded machine inflates far less than the round trips. Each query's
`EXPLAIN (ANALYZE, BUFFERS)` is printed; a `Seq Scan on file_uploads` anywhere exits 1 (as does
a short page where a full one is due). Missed latency goals (listing p99 <= 20 ms, gauges
<= 50 ms) are reported and exit 0.

    .venv/bin/python bench/scale.py                      # 10M files: ~25 min on 2 busy cores
    .venv/bin/python bench/scale.py --files 1000000      # 1M: ~5 min
    .venv/bin/python bench/scale.py --files 60000 --jobs 100 --samples 5  # smoke: ~10 s
    .venv/bin/python bench/scale.py --database-url postgresql://user@host/filestore_scale
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from bench_common import load_line, machine_line, verdict
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from filestore import gauges, pagination
from filestore.auth import service as auth_service
from filestore.auth import sessions as auth_sessions
from filestore.auth.models import Role, User
from filestore.auth.security import AccessClaims, decode_access_claims
from filestore.db import create_engine, create_sessionmaker, libpq_url
from filestore.files import cleanup, orphans, queries
from filestore.files import reads as files_reads
from filestore.files.models import FileUpload
from filestore.jobs import service as jobs_service
from filestore.migrate import upgrade
from filestore.models import load_all_models
from filestore.requests import NO_CLIENT
from filestore.settings import Settings
from filestore.stats import service as stats_service
from tests.fixtures.servers import start_embedded_postgres

DATABASE = "filestore_scale"
PAGE = 50
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SPAN = timedelta(days=730)  # created_at spread over two years before NOW
NULL = "\\N"  # COPY's text format
MD5 = "0" * 32
SHA256 = "0" * 64
LISTING_GOAL_MS = 20.0
GAUGES_GOAL_MS = 50.0


# -- loading ----------------------------------------------------------------------------------


def _copy(conn: psycopg.Connection[Any], table: str, columns: str, rows: Any) -> None:
    """COPY text rows (already tab-separated lines) in 8 MB writes."""
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for line in rows:
            buffer.write(line)
            if buffer.tell() > 8_000_000:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def _file_rows(args: argparse.Namespace) -> Any:
    rng = random.Random(13)
    step = SPAN / args.files
    start = NOW - SPAN
    customers, stride = args.customers, max(1, args.files // max(1, args.heavy))
    for i in range(args.files):
        if i % stride == 0:  # the heavy customer's files, spread over the span
            customer, ticket = 1, 1
        else:
            customer = rng.randrange(1, customers + 1)
            pick = rng.random()
            ticket = customer if pick < 0.25 else customer + customers if pick < 0.5 else 0
        created = start + step * i
        status, expires = "completed", NULL
        roll = rng.random()
        if roll < 0.02:
            status = "deleted"
        elif roll > 0.9999:  # an upload a crash left behind
            status = "uploading"
        elif roll < 0.05:  # a tenth of them due (expired before NOW)
            due = roll < 0.023
            expires = str(NOW - timedelta(hours=1 + i % 500) if due else NOW + timedelta(days=30))
        bucket = "ticket-media" if ticket else "customer-uploads"
        yield (
            f"f{i}.pdf\t{bucket}\tc{customer}/2026/{i:09x}\t{1000 + i % 100_000}\t"
            f"application/pdf\tpdf\t{MD5}\t{SHA256}\t{status}\t{customer}\t"
            f"{ticket or NULL}\t{expires}\t{created}\n"
        )


def load(url: str, args: argparse.Namespace) -> None:
    libpq = libpq_url(url)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK checks, no triggers
        indexes = [
            row[0]
            for row in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'file_uploads' "
                "AND indexname <> 'pk_file_uploads'"
            )
        ]
        for (name,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'file_uploads' "
            "AND indexname <> 'pk_file_uploads'"
        ).fetchall():
            conn.execute(f'DROP INDEX "{name}"')
        timed(
            "customers",
            lambda: _copy(
                conn,
                "customers",
                "full_name, email",
                (f"Customer {c}\tc{c}@example.com\n" for c in range(1, args.customers + 1)),
            ),
        )
        timed(
            "tickets",
            lambda: _copy(
                conn,
                "tickets",
                "customer_id, subject",
                (
                    f"{(t - 1) % args.customers + 1}\tTicket {t}\n"
                    for t in range(1, 2 * args.customers + 1)
                ),
            ),
        )
        columns = (
            "filename, bucket, object_key, file_size, mime_type, file_type, md5, sha256, "
            "upload_status, customer_id, ticket_id, expires_at, created_at"
        )
        timed("file_uploads", lambda: _copy(conn, "file_uploads", columns, _file_rows(args)))
        timed("indexes", lambda: [conn.execute(ddl) for ddl in indexes])
        conn.execute(
            "INSERT INTO file_storage_deltas (bucket, bytes, files) SELECT bucket, sum(file_size),"
            " count(*) FROM file_uploads WHERE upload_status = 'completed' GROUP BY bucket"
        )
        conn.execute("SET session_replication_role = DEFAULT")  # the jobs' gauge trigger runs
        conn.execute(
            "INSERT INTO background_jobs (id, job_type, status, params, created_at) "
            "SELECT gen_random_uuid(), (ARRAY['csv_import', 'file_cleanup'])[1 + n %% 2]::job_type,"
            " (ARRAY['completed', 'failed', 'pending'])[1 + n %% 3]::job_status, '{}', "
            "now() - n * interval '1 minute' FROM generate_series(1, %s) AS n",
            (args.jobs,),
        )
        for fold in cleanup.FOLD_DELTAS:  # as the cleanup sweep does every interval
            conn.execute(fold)
        timed("analyze", lambda: conn.execute("VACUUM ANALYZE"))


def timed(what: str, step: Callable[[], Any]) -> None:
    began = time.monotonic()
    step()
    print(f"  loaded {what} in {time.monotonic() - began:.1f} s", flush=True)


# -- measuring --------------------------------------------------------------------------------


class Recorder:
    """Captures the SQL statements a query sends, to EXPLAIN them afterwards."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.on = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._grab)

    def _grab(self, _c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.on:
            self.statements.append((statement, parameters))


class Bench:
    def __init__(self, engine: AsyncEngine, samples: int) -> None:
        self.engine = engine
        self.maker = create_sessionmaker(engine)
        self.recorder = Recorder(engine)
        self.samples = samples
        self.results: list[tuple[str, float, float, float, float | None]] = []
        self.seq_scans: list[str] = []
        self.baseline_ms = 0.0

    async def measure(
        self,
        name: str,
        query: Callable[[AsyncSession, int], Awaitable[Any]],
        goal_ms: float | None = None,
        *,
        samples: int | None = None,
    ) -> None:
        async with self.maker() as session:
            await query(session, 0)  # warm
            times = []
            for n in range(samples or self.samples):
                began = time.perf_counter()
                await query(session, n)
                times.append((time.perf_counter() - began) * 1000)
            self.recorder.statements.clear()
            self.recorder.on = True
            await query(session, 1)
            self.recorder.on = False
            plans = []
            for statement, parameters in self.recorder.statements:
                if statement.lstrip().split(None, 1)[0].upper() == "SET":
                    continue
                result = await session.connection()
                rows = await result.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                )
                plans.append("\n".join(row[0] for row in rows))
            await session.rollback()
        cuts = statistics.quantiles(times, n=100, method="inclusive")
        p50, p99 = statistics.median(times), cuts[98]
        server_ms = sum(
            float(line.split(":")[1].split()[0])
            for plan in plans
            for line in plan.splitlines()
            if line.startswith("Execution Time:")
        )
        self.results.append((name, p50, p99, server_ms, goal_ms))
        print(f"\n== {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
        for plan in plans:
            print("   " + plan.replace("\n", "\n   "))
            if "Seq Scan on file_uploads" in plan:
                self.seq_scans.append(name)
        if name == BASELINE:
            self.baseline_ms = p50


BASELINE = "baseline: one row by primary key"


async def run(url: str, args: argparse.Namespace) -> int:
    load_all_models()
    settings = Settings()
    engine = create_engine(settings, url)
    bench = Bench(engine, args.samples)
    rng = random.Random(7)
    claims = await staff_login(bench, settings)

    def listing(customer: int | None = None, ticket: int | None = None, **kw: Any) -> Any:
        async def query(session: AsyncSession, n: int) -> None:
            owner = queries.Owner.customer if customer is not None else queries.Owner.ticket
            _, rows = await files_reads.read_listing(
                await session.connection(),
                claims,
                owner,
                customer if customer is not None else ticket or 0,
                settings=settings,
                now=NOW,
                limit=PAGE,
                offset=kw.get("offset", 0),
                after=kw.get("after"),
            )
            if kw.get("full") and len(rows) != PAGE:
                raise SystemExit(f"expected a full page, got {len(rows)} rows")

        return query

    async def random_customer(session: AsyncSession, n: int) -> None:
        await listing(customer=rng.randrange(2, args.customers + 1))(session, n)

    async def random_ticket(session: AsyncSession, n: int) -> None:
        await listing(ticket=rng.randrange(2, 2 * args.customers + 1))(session, n)

    async def by_id(session: AsyncSession, n: int) -> None:
        await session.execute(
            select(FileUpload.id).where(FileUpload.id == rng.randrange(1, args.files + 1))
        )

    async def metadata(session: AsyncSession, n: int) -> None:
        file_id = rng.randrange(1, args.files + 1)
        try:
            await files_reads.read_visible_row(
                await session.connection(), claims, file_id=file_id, settings=settings, now=NOW
            )
        except Exception as exc:  # deleted or expired rows are a 404: still a real lookup
            if type(exc).__name__ != "NotFound":
                raise

    async def jobs(session: AsyncSession, n: int) -> None:
        await jobs_service.list_jobs(session, status=None, job_type=None, limit=PAGE, offset=0)

    due_after: list[tuple[datetime, int]] = []

    async def due_files(session: AsyncSession, n: int, *, middle: bool = False) -> None:
        after = due_after[0] if middle and due_after else None
        rows = (await session.execute(cleanup.due_files_query(NOW, after, 500))).all()
        if not due_after and len(rows) == 500:
            due_after.append((rows[-1].expires_at, rows[-1].id))

    async def orphan_batch(session: AsyncSession, n: int) -> None:
        start = rng.randrange(0, args.files - 1000)
        keys = [
            f"c{rng.randrange(1, args.customers)}/2026/{i:09x}" for i in range(start, start + 1000)
        ]
        await orphans.owned_keys(session, "customer-uploads", keys)

    async def stuck(session: AsyncSession, n: int) -> None:
        await session.execute(select(FileUpload.id).where(*cleanup.stuck_rows(NOW)))

    async def metrics(session: AsyncSession, n: int) -> None:
        await gauges.refresh(session)

    async def overview(session: AsyncSession, n: int) -> None:
        await stats_service.overview(session, days=30, now=NOW)

    heavy_cursors = await cursors_of_heavy_customer(bench, claims, settings, args)

    await bench.measure(BASELINE, by_id)
    await bench.measure("customer files, page 1 (random customer)", random_customer, 20)
    await bench.measure("customer files, page 1 (customer 1)", listing(1, full=True), 20)
    await bench.measure(
        "customer files, page 100 by offset (customer 1)",
        listing(1, offset=99 * PAGE, full=True),
        20,
    )
    for page, after in heavy_cursors.items():
        await bench.measure(
            f"customer files, page {page} by cursor (customer 1)",
            listing(1, after=after, full=True),
            20,
        )
    if 1000 in heavy_cursors:
        await bench.measure(
            "customer files, page 1000 by offset (customer 1)",
            listing(1, offset=999 * PAGE, full=True),
            samples=min(args.samples, 30),  # the slow way round, for comparison only
        )
    await bench.measure("ticket files, page 1 (random ticket)", random_ticket, 20)
    await bench.measure("ticket files, page 1 (ticket 1)", listing(ticket=1, full=True), 20)
    await bench.measure("one file's metadata", metadata, 20)
    await bench.measure("jobs list, page 1", jobs, 20)
    await bench.measure("expiry sweep: due files, first batch", due_files)
    await bench.measure(
        "expiry sweep: due files, a later batch",
        lambda s, n: due_files(s, n, middle=True),
    )
    await bench.measure("orphan sweep: check of 1000 keys", orphan_batch)
    await bench.measure("stuck-upload sweep: rows left uploading", stuck)
    await bench.measure("/metrics database gauges", metrics, GAUGES_GOAL_MS)
    await bench.measure("console Overview, last 30 days (/stats/overview)", overview)
    await engine.dispose()
    return report(bench, args)


async def staff_login(bench: Bench, settings: Settings) -> AccessClaims:
    """The staff user `bench` (created once) and a new login session of its own, and the
    claims of that login's access token as the listing routes get them (`deps.get_reading`
    verifies the bearer token and hands its claims over): their statement checks that user,
    its token version and the session with what it reads."""
    async with bench.maker() as session:
        user = await auth_service.get_by_login(session, "bench")
        if user is None:
            user = User(username="bench", password_hash="", role=Role.staff)
            session.add(user)
            await session.flush()
            await session.refresh(user)
        tokens = await auth_sessions.start(session, user=user, client=NO_CLIENT, settings=settings)
        await session.commit()
    return decode_access_claims(tokens.access_token, secret=settings.jwt_secret_key)


async def cursors_of_heavy_customer(
    bench: Bench, claims: AccessClaims, settings: Settings, args: argparse.Namespace
) -> dict[int, pagination.Keyset]:
    """The cursors that start pages 100 and 1000 of customer 1 (walked page by page once)."""
    wanted = {page for page in (100, 1000) if page * PAGE < args.heavy * 0.9}
    found: dict[int, pagination.Keyset] = {}
    after: pagination.Keyset | None = None
    async with bench.maker() as session:
        for page in range(1, max(wanted, default=0)):
            _, rows = await files_reads.read_listing(
                await session.connection(),
                claims,
                queries.Owner.customer,
                1,
                settings=settings,
                now=NOW,
                limit=PAGE,
                offset=0,
                after=after,
            )
            after = pagination.decode(pagination.encode(rows[-1].created_at, rows[-1].id))
            if page + 1 in wanted:
                found[page + 1] = after
    return found


def report(bench: Bench, args: argparse.Namespace) -> int:
    print(
        f"\n## {args.files:,} files, {args.customers:,} customers, {2 * args.customers:,} "
        f"tickets, {args.jobs:,} jobs; {args.samples} samples each; load {load_line()}"
    )
    print("\n| query | p50 ms | p99 ms | p50 / baseline | EXPLAIN ANALYZE ms | goal |")
    print("|---|---:|---:|---:|---:|---|")
    for name, p50, p99, server, goal in bench.results:
        ratio = p50 / bench.baseline_ms if bench.baseline_ms else 0.0
        target = f"p99 <= {goal:.0f} ms: {verdict(p99 <= goal)}" if goal else "-"
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {ratio:.1f} | {server:.2f} | {target} |")
    if bench.seq_scans:
        print("\n!!! SEQUENTIAL SCAN OF file_uploads in: " + "; ".join(bench.seq_scans))
        return 1
    print("\nNo sequential scan of file_uploads in any plan.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, help="default: files / 10 (tickets: 2x)")
    parser.add_argument("--heavy", type=int, default=60_000, help="files of customer 1")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--database-url", help="a server to use (its database is recreated)")
    parser.add_argument("--skip-load", action="store_true", help="reuse --database-url's rows")
    args = parser.parse_args()
    args.customers = args.customers or max(10, args.files // 10)
    args.heavy = min(args.heavy, args.files // 10)
    print(f"machine: {machine_line()}; load {load_line()}", flush=True)
    with ExitStack() as stack:
        if args.database_url:
            url = args.database_url
            if not args.skip_load:
                url = recreate(url)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scale-")))
            pg = start_embedded_postgres(workdir / "pgdata")
            stack.callback(pg.stop)
            url = pg.create_database(DATABASE)
        if not args.skip_load:
            upgrade(url)
            began = time.monotonic()
            load(url, args)
            print(f"loaded in {time.monotonic() - began:.0f} s; load {load_line()}", flush=True)
        return asyncio.run(run(url, args))


def recreate(url: str) -> str:
    """Drop and create the database `url` names, through the server's `postgres` database."""
    base, _, name = libpq_url(url).rpartition("/")
    name = name.split("?")[0] or DATABASE
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    raise SystemExit(main())
