"""Soak: minutes of bounded mixed traffic against one production-mode server; is it still well?

What it runs (SeaweedFS `weed mini` as the S3 server, embedded PostgreSQL, a live
production-mode `filestore serve` and one `filestore worker`, all started in a temp dir and
stopped at the end): `--clients` (default 20) async clients for `--minutes` (default 10), each
sending one request at a time, picked at random by weight:

* upload (3): `POST /files/upload` of a PDF-looking file of 1 KB-5 MB (log-uniform), as the
  admin, for the bench customer;
* download (3): `GET /files/download/{id}` of one of 20 seeded files (1 KB-5 MB, never deleted),
  checked for its size;
* listing (3): `GET /files/customer/{id}?limit=20`, as the admin or as a customer user;
* metadata (2): `GET /files/{id}`;
* delete (1): `DELETE /files/{id}` of a file this run uploaded (204 expected);
* login (1): `POST /auth/login` of one of 5 customer users (200 expected);

and beside them, one import at a time, back to back: a 20,000-row customers CSV uploaded and
imported with `POST /files/csv-import`, polled every 0.5 s; every job must end `completed`.

Every 5 s a sampler records the API server's RSS (process and children) and the PostgreSQL
connections of the bench database (`pg_stat_activity`, the sampler's own excluded).

Report: errors that are not the client's fault (5xx, transport errors, an unexpected status,
a failed import -- the goal is 0); p50/p99 per route in the first and in the last minute and
their ratio (goal: last-minute p99 within 2x the first minute's); API RSS before traffic,
after the first minute (the warm-up) and at the end (goal: end within +-30 MB of the
after-warm-up figure); the most PostgreSQL connections seen against the pools' bound (per
process: SQLAlchemy `2 x DB_POOL_SIZE` + procrastinate's 4; two processes).

How to run (from the repo root): `python bench/soak.py [--minutes 10] [--clients 20]
[--env NAME=VALUE ...]` (`--env` sets the server's and worker's environment, to compare settings).
The clients, server, worker, PostgreSQL and SeaweedFS share the machine, so latencies depend
on its load (the load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# `tests.fixtures` lives in the repo, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil  # type: ignore[import-untyped]
import psycopg
from bench_common import MIB, load_line, machine_line, rss_of_tree, s3_backends, verdict
from csv_import import start_worker_ready

from tests.fixtures.live import LiveServer

DATABASE = "filestore_bench_soak"
POOL_SIZE = 10
MIN_SIZE, MAX_SIZE = 1024, 5 * 1024 * 1024
SEEDED = 20
USERS = 5
IMPORT_ROWS = 20000
SAMPLE_EVERY = 5.0
GOAL_RSS_MB = 30.0
GOAL_P99_RATIO = 2.0
WEIGHTS = {"upload": 3, "download": 3, "listing": 3, "metadata": 2, "delete": 1, "login": 1}
FILLER = random.Random(1).randbytes(MAX_SIZE)


def pdf(size: int) -> bytes:
    head = b"%PDF-1.4\n% soak\n"
    return head + FILLER[: size - len(head)]


def random_size(rng: random.Random) -> int:
    return int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))


@dataclass
class Sample:
    at: float
    rss: int
    connections: int
    active: int


@dataclass
class Record:
    route: str
    at: float  # seconds since the soak started
    seconds: float


@dataclass
class Soak:
    server: LiveServer
    clients: int
    seconds: float
    admin: httpx.AsyncClient = field(init=False)
    customer_id: int = 0
    seeded: list[tuple[int, int]] = field(default_factory=list)  # (file id, size)
    uploaded: list[int] = field(default_factory=list)
    users: list[tuple[str, str, str, int]] = field(
        default_factory=list
    )  # name, password, token, customer
    records: list[Record] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    imports: Counter[str] = field(default_factory=Counter)
    started: float = 0.0

    def client(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        limits = httpx.Limits(max_connections=self.clients + 4)
        return httpx.AsyncClient(
            base_url=self.server.base_url, headers=headers, timeout=120, limits=limits
        )

    def error(self, route: str, what: str) -> None:
        self.errors[route] += 1
        if len(self.error_examples) < 10:
            self.error_examples.append(f"{route}: {what[:300]}")

    async def call(
        self, route: str, expected: int, request: Any, http: httpx.AsyncClient | None = None
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response: httpx.Response = await request(http or self.admin)
        except httpx.HTTPError as exc:
            self.error(route, f"{type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - started
        if response.status_code != expected:
            self.error(route, f"{response.status_code} {response.text}")
            return None
        self.records.append(Record(route, time.perf_counter() - self.started, elapsed))
        return response

    async def setup(self) -> None:
        token = self.server.admin().token
        self.admin = self.client(token)
        response = await self.admin.post(
            "/customers", json={"full_name": "Soak", "email": f"s{uuid.uuid4().hex[:8]}@ex.com"}
        )
        self.customer_id = response.raise_for_status().json()["id"]
        rng = random.Random(2)
        for i in range(SEEDED):
            size = random_size(rng)
            response = await self.upload_bytes(self.admin, f"seed{i}.pdf", pdf(size))
            self.seeded.append((response.raise_for_status().json()["id"], size))
        anonymous = self.client(None)
        for i in range(USERS):
            name, password = f"soak-{i}-{uuid.uuid4().hex[:6]}", "Pw-" + uuid.uuid4().hex
            customer_id = self.customer_id
            if i:  # one customer user per customer
                email = f"s{uuid.uuid4().hex[:8]}@ex.com"
                customer = await self.admin.post(
                    "/customers", json={"full_name": name, "email": email}
                )
                customer_id = customer.raise_for_status().json()["id"]
            user = {"username": name, "password": password, "role": "customer"}
            user_body: dict[str, Any] = {**user, "customer_id": customer_id}
            (await self.admin.post("/users", json=user_body)).raise_for_status()
            login = await anonymous.post(
                "/auth/login", json={"username": name, "password": password}
            )
            token = login.raise_for_status().json()["access_token"]
            self.users.append((name, password, token, customer_id))
        await anonymous.aclose()

    async def upload_bytes(self, http: httpx.AsyncClient, name: str, body: bytes) -> httpx.Response:
        return await http.post(
            "/files/upload",
            data={"customer_id": str(self.customer_id)},
            files={"file": (name, body, "application/pdf")},
        )

    async def one(self, rng: random.Random, customers: list[tuple[httpx.AsyncClient, int]]) -> None:
        op = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        if op == "delete" and not self.uploaded:
            op = "upload"
        if op == "upload":
            body = pdf(random_size(rng))
            response = await self.call("upload", 201, lambda h: self.upload_bytes(h, "u.pdf", body))
            if response is not None:
                self.uploaded.append(response.json()["id"])
        elif op == "download":
            file_id, size = rng.choice(self.seeded)
            response = await self.call(
                "download", 200, lambda h: h.get(f"/files/download/{file_id}")
            )
            if response is not None and len(response.content) != size:
                self.error("download", f"{len(response.content)} bytes, expected {size}")
        elif op == "listing":
            http, customer_id = rng.choice([(self.admin, self.customer_id), *customers])
            path = f"/files/customer/{customer_id}?limit=20"
            await self.call("listing", 200, lambda h: h.get(path), http)
        elif op == "metadata":
            file_id = rng.choice(self.seeded)[0]
            await self.call("metadata", 200, lambda h: h.get(f"/files/{file_id}"))
        elif op == "delete":
            file_id = self.uploaded.pop(rng.randrange(len(self.uploaded)))
            await self.call("delete", 204, lambda h: h.delete(f"/files/{file_id}"))
        else:
            name, password, _, _ = rng.choice(self.users)
            credentials = {"username": name, "password": password}
            await self.call("login", 200, lambda h: h.post("/auth/login", json=credentials))

    async def loop(
        self, seed: int, deadline: float, customers: list[tuple[httpx.AsyncClient, int]]
    ) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < deadline:
            await self.one(rng, customers)

    async def import_loop(self, deadline: float) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            domain = f"i{n}-{uuid.uuid4().hex[:6]}.example.com"
            lines = ["full_name,email,phone,city,country"]
            lines += [
                f"Person {i},p{i}@{domain},+1555{i:07d},Austin,US" for i in range(IMPORT_ROWS)
            ]
            body = ("\n".join(lines) + "\n").encode()
            response = await self.call(
                "import upload",
                201,
                lambda h, csv=body: h.post(
                    "/files/upload",
                    data={"file_type": "csv"},
                    files={"file": ("c.csv", csv, "text/csv")},
                ),
            )
            if response is None:
                continue
            file_id = response.json()["id"]
            response = await self.call(
                "import start",
                202,
                lambda h, f=file_id: h.post("/files/csv-import", json={"file_upload_id": f}),
            )
            if response is None:
                continue
            job_id = response.json()["job_id"]
            while True:
                await asyncio.sleep(0.5)
                response = await self.call(
                    "import poll", 200, lambda h, j=job_id: h.get(f"/files/jobs/{j}")
                )
                if response is None:
                    continue
                job = response.json()
                if job["status"] in ("completed", "failed", "cancelled"):
                    break
            ok = job["status"] == "completed" and job["successful_rows"] == IMPORT_ROWS
            self.imports["completed" if ok else "failed"] += 1
            if not ok:
                self.error("import", f"job {job['status']}: {job}")

    async def run(self) -> None:
        await self.setup()
        customers = [(self.client(u[2]), u[3]) for u in self.users]
        self.started = time.perf_counter()
        deadline = self.started + self.seconds
        await asyncio.gather(
            self.import_loop(deadline),
            *(self.loop(c, deadline, customers) for c in range(self.clients)),
        )
        for http in [self.admin, *(c for c, _ in customers)]:
            await http.aclose()


class Sampler:
    """API RSS and PostgreSQL connections every SAMPLE_EVERY seconds, in a thread."""

    def __init__(self, server: LiveServer) -> None:
        self.process = psutil.Process(server.process.pid)
        self.url = server.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.perf_counter()

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM "
                    "pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()
                connections, active = row if row else (0, 0)
                at = time.perf_counter() - self.started
                self.samples.append(Sample(at, rss_of_tree(self.process), connections, active))
                if self._stop.wait(SAMPLE_EVERY):
                    return

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else 0.0


def report(soak: Soak, sampler: Sampler, args: argparse.Namespace, load_before: str) -> bool:
    total = soak.seconds
    window = min(60.0, total / 2)
    print(
        f"\n{args.clients} clients + 1 import loop for {total / 60:.1f} min; load average "
        f"before {load_before}, after {load_line()}; {len(soak.records)} requests"
    )
    print(
        f"| route | requests | first {window:.0f} s p50 / p99 ms | last {window:.0f} s p50 / "
        "p99 ms | p99 last/first |"
    )
    print("|---|---:|---:|---:|---:|")
    stable = True
    for route in [*WEIGHTS, "import upload", "import start", "import poll"]:
        rows = [r for r in soak.records if r.route == route]
        first = [r.seconds for r in rows if r.at - r.seconds < window]
        last = [r.seconds for r in rows if r.at > total - window]
        ratio = pct(last, 0.99) / pct(first, 0.99) if first and last else 0.0
        if route in WEIGHTS and ratio > GOAL_P99_RATIO:
            stable = False
        print(
            f"| {route} | {len(rows)} | {pct(first, 0.5):.0f} / {pct(first, 0.99):.0f} | "
            f"{pct(last, 0.5):.0f} / {pct(last, 0.99):.0f} | {ratio:.2f} |"
        )
    rss = [s.rss for s in sampler.samples]
    connections = [s.connections for s in sampler.samples]
    # The first minute is the warm-up (pools, caches, allocator arenas): flat means from then on.
    warm = next((s.rss for s in sampler.samples if s.at >= window), rss[-1])
    drift = (rss[-1] - warm) / 1e6
    bound = 2 * (2 * POOL_SIZE + 4)
    errors = sum(soak.errors.values())
    print(f"imports: {dict(soak.imports)} ({IMPORT_ROWS} rows each)")
    print(
        f"errors not the client's fault: {errors} {dict(soak.errors)} -- 0: {verdict(not errors)}"
    )
    for example in soak.error_examples:
        print(f"  {example}")
    print(
        f"API RSS before traffic {rss[0] / MIB:.0f} MiB, "
        f"after {window:.0f} s {warm / MIB:.0f} MiB, "
        f"end {rss[-1] / MIB:.0f} MiB, peak "
        f"{max(rss) / MIB:.0f} MiB; drift {drift:+.1f} MB -- within +-{GOAL_RSS_MB:.0f} MB: "
        f"{verdict(abs(drift) <= GOAL_RSS_MB)}"
    )
    print(f"p99 last/first minute <= {GOAL_P99_RATIO}: {verdict(stable)}")
    print(
        f"PostgreSQL connections: min {min(connections)}, median "
        f"{statistics.median(connections):.0f}, max {max(connections)} (active max "
        f"{max(s.active for s in sampler.samples)}); pool bound {bound}: "
        f"{verdict(max(connections) <= bound)}"
    )
    step = max(1, len(sampler.samples) // 12)
    print(
        "over time (s: connections/RSS MiB): "
        + ", ".join(
            f"{s.at:.0f}: {s.connections}/{s.rss / MIB:.0f}" for s in sampler.samples[::step]
        )
    )
    return not errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10, help="length (default 10)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the server and worker (repeatable), e.g. "
        "FILESTORE_MALLOC_ARENA_MAX=0 to compare glibc's default arenas",
    )
    args = parser.parse_args(argv)
    load_before = load_line()
    print(f"machine: {machine_line()}; load average {load_before}", flush=True)
    settings = {"LOG_LEVEL": "INFO", "DB_POOL_SIZE": str(POOL_SIZE)}
    settings.update(pair.split("=", 1) for pair in args.env)
    if args.env:
        print(f"environment: {' '.join(args.env)}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="filestore-bench-soak-") as tmp,
        s3_backends(Path(tmp), DATABASE, settings) as (_, server),
    ):
        worker = start_worker_ready(server)
        try:
            soak = Soak(server, args.clients, args.minutes * 60)
            with Sampler(server) as sampler:
                asyncio.run(soak.run())
        finally:
            worker.stop()
    return 0 if report(soak, sampler, args, load_before) else 1


if __name__ == "__main__":
    sys.exit(main())
