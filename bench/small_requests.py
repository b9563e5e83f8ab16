"""Small requests: 4 KiB uploads and downloads, listings and metadata, against direct S3.

What it measures, in one run (SeaweedFS as the S3 server, embedded PostgreSQL, a live
production-mode `filestore serve` with `--workers N`, all started in a temp dir and stopped at
the end), each phase with C concurrent clients (default 8) for D seconds (default 6) after a
one-second warm-up:

* `direct PUT 4 KiB`: `obstore.put_async` of 4 KiB into the server's bucket (the baseline);
* `upload 4 KiB`: `POST /files/upload` (multipart, file only, as the admin);
* `direct GET 4 KiB`: `obstore.get_async` of one of those objects (the baseline);
* `download 4 KiB`: `GET /files/download/{id}` of one of the uploaded files;
* `GET /files/customer/{id}?limit=20` (a customer with 40 files), `GET /files/{id}`,
  `GET /auth/me`.

For each: requests per second, latency p50/p99 as the client saw it, and the CPU seconds the
server process tree (uvicorn and its worker processes) spent per request (psutil, user +
system). Upload and download also print their ratio to the direct S3 request of the same
run. The client (httpx, one process) shares the machine's cores with the server, SeaweedFS and
PostgreSQL, so req/s depends on the load; CPU per request is the steadier figure.

How to run (from the repo root):
`python bench/small_requests.py [--clients 8] [--seconds 6] [--workers 1]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

# `tests.fixtures` lives in the repo, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import obstore
import psutil  # type: ignore[import-untyped]
from bench_common import (
    cpu_of_tree,
    direct_store,
    load_line,
    machine_line,
    postmaster,
    s3_backends,
)
from lean_http import Connection, multipart

from tests.fixtures.live import LiveServer
from tests.fixtures.servers import SeaweedFS

SIZE = 4096
LISTED_FILES = 40
BUCKET = "customer-uploads"


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    # CPU seconds of the other processes on the machine's cores (PostgreSQL, SeaweedFS).
    other_cpu: dict[str, float] = field(default_factory=dict)
    load: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    def cpu_ms(self, idle_rate: float = 0.0) -> float:
        """Server CPU per request, less what the idle server burns in the same time."""
        if not self.latencies:
            return 0.0
        return max(0.0, self.server_cpu - idle_rate * self.seconds) / len(self.latencies) * 1000

    def other_cpu_ms(self, name: str) -> float:
        cpu = self.other_cpu.get(name, 0.0)
        return cpu / len(self.latencies) * 1000 if self.latencies else 0.0

    def client_cpu_ms(self) -> float:
        """The bench process's own CPU per request (the HTTP client, or obstore's threads)."""
        return self.client_cpu / len(self.latencies) * 1000 if self.latencies else 0.0


Request = Callable[[int], Awaitable[None]]


async def drive(clients: int, seconds: float, request: Request) -> list[float]:
    """`clients` loops calling `request(i)` back to back for `seconds`; their latencies."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(client: int) -> None:
        i = client
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await request(i)
            latencies.append(time.perf_counter() - started)
            i += clients

    await asyncio.gather(*(loop(c) for c in range(clients)))
    return latencies


async def measure(
    name: str,
    server: psutil.Process,
    clients: int,
    seconds: float,
    request: Request,
    others: Mapping[str, psutil.Process] | None = None,
) -> Phase:
    await drive(clients, 1.0, request)  # warm-up: connections open, caches filled
    phase = Phase(name)
    others = others or {}
    others_before = {key: cpu_of_tree(process) for key, process in others.items()}
    cpu_before, client_before = cpu_of_tree(server), time.process_time()
    started = time.perf_counter()
    phase.latencies = await drive(clients, seconds, request)
    phase.seconds = time.perf_counter() - started
    phase.server_cpu = cpu_of_tree(server) - cpu_before
    phase.client_cpu = time.process_time() - client_before
    phase.other_cpu = {key: cpu_of_tree(p) - others_before[key] for key, p in others.items()}
    phase.load = os.getloadavg()[0]
    return phase


def expect(response: httpx.Response, status: int = 200) -> httpx.Response:
    if response.status_code != status:
        raise SystemExit(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response


def check(status: int, expected: int, body: bytes, what: str) -> None:
    if status != expected:
        raise SystemExit(f"{what}: {status} {body[:300]!r}")


def payload(i: int) -> bytes:
    head = f"%PDF-1.4\n% bench {i}\n".encode()
    return head + b"x" * (SIZE - len(head))


class Bench:
    def __init__(
        self, s3: SeaweedFS, server: LiveServer, clients: int, seconds: float, client: str
    ) -> None:
        self.clients = clients
        self.seconds = seconds
        self.server = psutil.Process(server.process.pid)
        # The other processes sharing the cores, whose CPU per request each phase reports.
        self.others: dict[str, psutil.Process] = {"S3": psutil.Process(s3.process.pid)}
        token = server.admin().token or ""
        limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
        self.http = httpx.AsyncClient(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            limits=limits,
        )
        auth = {"Authorization": f"Bearer {token}"}
        self.lean = (
            [Connection(server.base_url, auth) for _ in range(clients)]
            if client == "lean"
            else None
        )
        self.store = direct_store(s3, BUCKET)
        self.prefix = f"bench-small/{uuid.uuid4().hex}"
        self.file_ids: list[int] = []
        self.customer_id = 0
        self.idle_rate = 0.0  # server CPU seconds per second with no request in flight

    async def setup(self) -> None:
        customer = await self.http.post(
            "/customers",
            json={"full_name": "Bench Customer", "email": f"b{uuid.uuid4().hex[:8]}@example.com"},
        )
        self.customer_id = expect(customer, 201).json()["id"]
        for i in range(LISTED_FILES):
            response = await self.http.post(
                "/files/upload",
                data={"customer_id": str(self.customer_id)},
                files={"file": (f"c{i}.pdf", payload(i), "application/pdf")},
            )
            self.file_ids.append(expect(response, 201).json()["id"])
        for i in range(64):
            await obstore.put_async(self.store, f"{self.prefix}/{i}", payload(i))

    async def direct_put(self, i: int) -> None:
        await obstore.put_async(self.store, f"{self.prefix}/put-{i}", payload(i))

    async def call(
        self, i: int, method: str, path: str, body: bytes = b"", content_type: str | None = None
    ) -> tuple[int, bytes]:
        """One API request from client loop `i % clients`, by the chosen client."""
        if self.lean is not None:
            answer = await self.lean[i % self.clients].request(method, path, body, content_type)
            return answer.status, bytes(answer.body)
        headers = {"Content-Type": content_type} if content_type else None
        response = await self.http.request(method, path, content=body or None, headers=headers)
        return response.status_code, response.content

    async def upload(self, i: int) -> None:
        body, content_type = multipart("file", f"u{i}.pdf", payload(i), "application/pdf")
        status, answer = await self.call(i, "POST", "/files/upload", body, content_type)
        check(status, 201, answer, "upload")

    async def direct_get(self, i: int) -> None:
        result = await obstore.get_async(self.store, f"{self.prefix}/{i % 64}")
        if len(await result.bytes_async()) != SIZE:
            raise SystemExit("direct GET: wrong size")

    async def download(self, i: int) -> None:
        file_id = self.file_ids[i % len(self.file_ids)]
        status, body = await self.call(i, "GET", f"/files/download/{file_id}")
        check(status, 200, body, "download")
        if len(body) != SIZE:
            raise SystemExit("download: wrong size")

    async def listing(self, i: int) -> None:
        path = f"/files/customer/{self.customer_id}?limit=20"
        status, body = await self.call(i, "GET", path)
        check(status, 200, body, "listing")
        if len(json.loads(body)) != 20:
            raise SystemExit("listing: not 20 files")

    async def metadata(self, i: int) -> None:
        path = f"/files/{self.file_ids[i % len(self.file_ids)]}"
        status, body = await self.call(i, "GET", path)
        check(status, 200, body, "GET /files/{id}")

    async def me(self, i: int) -> None:
        status, body = await self.call(i, "GET", "/auth/me")
        check(status, 200, body, "/auth/me")

    async def idle(self, seconds: float = 4.0) -> None:
        """The server's own background work (job worker polling, pool upkeep) per second,
        taken off every phase's CPU: at a few requests per second it would dominate."""
        await asyncio.sleep(1.0)
        before, started = cpu_of_tree(self.server), time.perf_counter()
        await asyncio.sleep(seconds)
        self.idle_rate = (cpu_of_tree(self.server) - before) / (time.perf_counter() - started)
        print(f"  idle server CPU {self.idle_rate * 1000:.1f} ms per second", flush=True)

    async def run(self, only: set[str] | None) -> list[Phase]:
        await self.setup()
        await self.idle()
        plan: list[tuple[str, Request]] = [
            ("direct PUT 4 KiB", self.direct_put),
            ("upload 4 KiB", self.upload),
            ("direct GET 4 KiB", self.direct_get),
            ("download 4 KiB", self.download),
            ("GET /files/customer/{id}?limit=20", self.listing),
            ("GET /files/{id}", self.metadata),
            ("GET /auth/me", self.me),
        ]
        phases = []
        for name, request in plan:
            if only and not any(word in name for word in only):
                continue
            phase = await measure(
                name, self.server, self.clients, self.seconds, request, self.others
            )
            others = "".join(
                f"{key} CPU {phase.other_cpu_ms(key):5.2f} ms/req  " for key in self.others
            )
            print(
                f"  {name:<36} {phase.rate:7.0f} req/s  p50 {phase.pct(0.5):6.1f} ms  "
                f"p99 {phase.pct(0.99):6.1f} ms  "
                f"server CPU {phase.cpu_ms(self.idle_rate):5.2f} ms/req  "
                f"client CPU {phase.client_cpu_ms():5.2f} ms/req  {others}load {phase.load:.2f}",
                flush=True,
            )
            phases.append(phase)
        await self.http.aclose()
        for connection in self.lean or []:
            await connection.close()
        return phases


def report(
    phases: list[Phase], args: argparse.Namespace, load_before: str, idle_rate: float
) -> None:
    by_name = {p.name: p for p in phases}
    print(
        f"\n{args.clients} clients, {args.seconds:.0f} s per phase, server --workers "
        f"{args.workers}, {args.client} client; load average before {load_before}, "
        f"after {load_line()}; "
        f"idle server CPU {idle_rate * 1000:.1f} ms/s (subtracted)"
    )
    print(
        "| request | req/s | p50 ms | p99 ms | server CPU ms/req | client CPU ms/req "
        "| PG CPU ms/req | S3 CPU ms/req | vs direct S3 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    pairs = {"upload 4 KiB": "direct PUT 4 KiB", "download 4 KiB": "direct GET 4 KiB"}
    for phase in phases:
        base = by_name.get(pairs.get(phase.name, ""))
        ratio = f"{phase.rate / base.rate:.3f}" if base and base.rate else "-"
        cpu = f"{phase.cpu_ms(idle_rate):.2f}" if not phase.name.startswith("direct") else "-"
        print(
            f"| {phase.name} | {phase.rate:.0f} | {phase.pct(0.5):.1f} | {phase.pct(0.99):.1f} "
            f"| {cpu} | {phase.client_cpu_ms():.2f} | {phase.other_cpu_ms('PG'):.2f} "
            f"| {phase.other_cpu_ms('S3'):.2f} | {ratio} |"
        )


def backends(workdir: Path, workers: int) -> AbstractContextManager[tuple[SeaweedFS, LiveServer]]:
    # LOG_LEVEL INFO: every request's log line is part of its cost.
    return s3_backends(
        workdir, "filestore_bench_small", {"LOG_LEVEL": "INFO"}, ["--workers", str(workers)]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=6, help="seconds per phase (default 6)")
    parser.add_argument("--workers", type=int, default=1, help="`serve --workers` (default 1)")
    parser.add_argument(
        "--client",
        choices=["lean", "httpx"],
        default="lean",
        help="HTTP client for the API phases: lean (httptools, bench/lean_http.py) or httpx",
    )
    parser.add_argument(
        "--only", action="append", help="run only phases whose name contains this (repeatable)"
    )
    args = parser.parse_args(argv)
    load_before = load_line()
    print(f"machine: {machine_line()}; load average {load_before}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="filestore-bench-small-") as tmp,
        backends(Path(tmp), args.workers) as (s3, server),
    ):
        bench = Bench(s3, server, args.clients, args.seconds, args.client)
        bench.others["PG"] = postmaster(Path(tmp) / "pgdata")
        phases = asyncio.run(bench.run(set(args.only) if args.only else None))
    report(phases, args, load_before, bench.idle_rate)
    api = [p.cpu_ms(bench.idle_rate) for p in phases if not p.name.startswith("direct")]
    median = statistics.median(api) if api else 0.0
    print(f"median server CPU per API request: {median:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
