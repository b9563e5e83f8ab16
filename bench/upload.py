"""Upload and download throughput of Filestore's API against obstore talking to S3 directly.

What it measures, in one run (SeaweedFS as the S3 server, embedded PostgreSQL, a live
production-mode `filestore serve`, all started in a temp dir and stopped at the end):

* single upload: `POST /files/upload` of one file (default 100 MiB of random bytes named
  `.pdf`; fields first, then the file, streamed from a generator by httpx with a Content-Length)
  against `obstore.put_async` of the same bytes from an async iterator, with the server's own
  `upload_chunk_size` / `upload_concurrency` (the `Settings` defaults);
* single download: `GET /files/download/{id}` streamed to /dev/null against `obstore.get_async`
  streamed to /dev/null with the server's `DOWNLOAD_CHUNK_SIZE`;
* download with `?redirect=true`: the API answers 307 to a presigned GET, which the client
  (httpx) follows without its token, timed together — against a direct GET by the same client
  library (httpx fetching a presigned GET of the same object, no API): that like-for-like
  ratio is the goal's, as it isolates what the redirect adds (one API request); the ratio to
  obstore's GET is printed too, and mixes in the difference between the two HTTP clients;
* concurrent upload: N (default 8) uploads at once through the API against N direct puts at
  once; aggregate throughput (`--concurrency 0` skips it);
* the server's RSS (process and children, sampled every 20 ms in a thread during every phase):
  idle (after a warm-up), peak per phase, growth = peak - idle;
* CPU seconds per 100 MiB of the three processes that share the machine (API server, S3
  server, this client) in every phase, and the throughput ratio that the CPU alone allows
  (direct total / API total): when they saturate the cores and nothing else runs, that is the
  ceiling of the API/direct ratio.

Each measurement is repeated (default 3; direct and API interleaved, taking turns to go first)
and the median is reported; throughput is MiB/s (1 MiB = 1,048,576 bytes). Every stored object
is downloaded again (untimed) and its SHA-256 compared with the uploaded bytes', and the API
uploads carry `checksum_sha256`, so a broken pipeline fails the run (exit 1) instead of looking
fast. Goals (API/direct): upload >= 0.85, download >= 0.90, single-upload server RSS growth
<= 64 MiB; missing a goal still exits 0.

How to run (from the repo root): `make bench`, or
`python bench/upload.py [--size-mb 100] [--concurrency 8] [--repeat 3]`.
It takes a few minutes on a 2-core machine; client, server and SeaweedFS share the CPU, so run
it on an otherwise idle machine (the load average is printed with the results).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

# `tests.fixtures` lives in the repo, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import obstore
import psutil  # type: ignore[import-untyped]
from bench_common import (
    MIB,
    PeriodicSampler,
    cpu_of,
    direct_store,
    load_line,
    machine_line,
    rss_of,
    s3_backends,
    verdict,
)

from filestore.settings import Settings
from filestore.storage.presign import Credentials, presign
from filestore.storage.store import DOWNLOAD_CHUNK_SIZE
from tests.fixtures.live import LiveServer
from tests.fixtures.servers import SeaweedFS

SEED_MAX_FILE_SIZE = 104_857_600  # the seed's MAX_FILE_SIZE (100 MiB)
PDF_HEAD = b"%PDF-1.4\n"
# What the bench feeds each side per iteration: the HTTP client's body chunks, and the direct
# put's, which match what uvicorn (httptools on uvloop) hands the server per read: ~256 KiB.
CLIENT_CHUNK = 1 * MIB
DIRECT_CHUNK = 256 * 1024

BUCKET = Settings.model_fields["minio_bucket_customer_uploads"].default
UPLOAD_CHUNK_SIZE: int = Settings.model_fields["upload_chunk_size"].default
UPLOAD_CONCURRENCY: int = Settings.model_fields["upload_concurrency"].default
HTTP_TIMEOUT = httpx.Timeout(600.0, connect=10.0)

T = TypeVar("T")

GOAL_UPLOAD_RATIO = 0.85
GOAL_DOWNLOAD_RATIO = 0.90
GOAL_RSS_GROWTH_MIB = 64.0
GOAL_REDIRECT_RATIO = 0.95


class BenchError(RuntimeError):
    """The pipeline returned wrong bytes or an unexpected status: the numbers mean nothing."""


# -- measuring --------------------------------------------------------------------------------


class Watch:
    """The three processes that share the machine: the API server, the S3 server, this client."""

    names = ("server", "s3", "client")

    def __init__(self, server_pid: int, s3_pid: int) -> None:
        self.server = psutil.Process(server_pid)
        self.processes = {
            "server": self.server,
            "s3": psutil.Process(s3_pid),
            "client": psutil.Process(os.getpid()),
        }

    def server_tree(self) -> list[Any]:
        try:
            return [self.server, *self.server.children(recursive=True)]
        except psutil.Error:
            return [self.server]

    def cpu(self) -> dict[str, float]:
        return {name: cpu_of(process) for name, process in self.processes.items()}


class RssSampler(PeriodicSampler):
    """The server's peak RSS (with any children) while the block runs.

    Listing children scans all of /proc, so it is redone once a second only: the sampler
    shares the CPU with what it measures.
    """

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self._watch = watch
        self._tree = watch.server_tree()
        self._listed_at = time.monotonic()
        self.peak = 0

    def sample(self) -> None:
        if time.monotonic() - self._listed_at > 1.0:
            self._tree, self._listed_at = self._watch.server_tree(), time.monotonic()
        self.peak = max(self.peak, rss_of(self._tree))


@dataclass
class Run:
    """One timed run: bytes moved, wall time, server RSS peak, CPU seconds per process."""

    nbytes: int
    seconds: float
    rss_peak: int
    cpu: dict[str, float]

    @property
    def mib_s(self) -> float:
        return self.nbytes / MIB / self.seconds

    def cpu_per_100mib(self, name: str) -> float:
        return self.cpu[name] * 100 * MIB / self.nbytes


@dataclass
class Series:
    """The runs of one measurement."""

    name: str
    runs: list[Run] = field(default_factory=list)

    def mib_s(self) -> float:
        return statistics.median(run.mib_s for run in self.runs)

    def peak_mib(self) -> float:
        return statistics.median(run.rss_peak for run in self.runs) / MIB

    def growth_mib(self, idle: int) -> float:
        return statistics.median(run.rss_peak - idle for run in self.runs) / MIB

    def worst_growth_mib(self, idle: int) -> float:
        return max(run.rss_peak - idle for run in self.runs) / MIB

    def cpu(self, name: str) -> float:
        """Median CPU seconds of process `name` per 100 MiB moved."""
        return statistics.median(run.cpu_per_100mib(name) for run in self.runs)


async def timed(watch: Watch, nbytes: int, work: Awaitable[T]) -> tuple[Run, T]:
    """Await `work` (a coroutine not started yet) while watching the processes."""
    with RssSampler(watch) as rss:
        cpu_before = watch.cpu()
        started = time.perf_counter()
        result = await work
        seconds = time.perf_counter() - started
        cpu_after = watch.cpu()
    cpu = {name: cpu_after[name] - cpu_before[name] for name in Watch.names}
    return Run(nbytes, seconds, rss.peak, cpu), result


# -- payload ------------------------------------------------------------------------------------


def make_payload(size: int) -> bytes:
    """`size` random bytes that sniff as a PDF."""
    if size < len(PDF_HEAD):
        raise SystemExit("--size-mb is too small")
    return PDF_HEAD + os.urandom(size - len(PDF_HEAD))


@dataclass(frozen=True)
class MultipartBody:
    """A multipart/form-data body (fields first, then the file) yielded from `data` in slices."""

    data: bytes
    sha256: str
    filename: str = "bench.pdf"
    boundary: str = field(default_factory=lambda: uuid.uuid4().hex)

    def _head(self) -> bytes:
        fields = {"file_type": "document", "checksum_sha256": self.sha256}
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        ]
        parts.append(
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{self.filename}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        )
        return "".join(parts).encode()

    def _tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def headers(self) -> dict[str, str]:
        length = len(self._head()) + len(self.data) + len(self._tail())
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(length),
        }

    async def stream(self) -> AsyncIterator[bytes]:
        yield self._head()
        data = self.data
        for offset in range(0, len(data), CLIENT_CHUNK):
            yield data[offset : offset + CLIENT_CHUNK]
        yield self._tail()


async def chunks_of(data: bytes) -> AsyncIterator[memoryview]:
    """What a direct put reads from: zero-copy slices, like the server's multipart events."""
    view = memoryview(data)
    for offset in range(0, len(data), DIRECT_CHUNK):
        yield view[offset : offset + DIRECT_CHUNK]


# -- the two sides ------------------------------------------------------------------------------


class Direct:
    """obstore against the S3 server, configured like the server's own store."""

    def __init__(self, s3: SeaweedFS) -> None:
        self.store = direct_store(s3, BUCKET)

    async def put(self, key: str, data: bytes) -> None:
        await obstore.put_async(
            self.store,
            key,
            chunks_of(data),
            attributes={"Content-Type": "application/pdf"},
            chunk_size=UPLOAD_CHUNK_SIZE,
            max_concurrency=UPLOAD_CONCURRENCY,
        )

    async def get(self, key: str, sink: Callable[[Any], object]) -> int:
        result = await obstore.get_async(self.store, key)
        total = 0
        async for chunk in result.stream(min_chunk_size=DOWNLOAD_CHUNK_SIZE):
            total += len(chunk)
            sink(chunk)
        return total

    async def verify(self, key: str, size: int, sha256: str) -> None:
        digest = hashlib.sha256()
        got = await self.get(key, digest.update)
        if got != size or digest.hexdigest() != sha256:
            raise BenchError(f"direct object {key}: {got} bytes, sha256 {digest.hexdigest()}")

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self.store, key)


class ApiClient:
    """Filestore's HTTP API, as an admin."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
        )
        self.store_http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)

    async def upload(self, data: bytes, sha256: str) -> int:
        body = MultipartBody(data, sha256)
        response = await self.http.post(
            "/files/upload", content=body.stream(), headers=body.headers
        )
        if response.status_code != 201:
            raise BenchError(f"upload answered {response.status_code}: {response.text[:500]}")
        out = response.json()
        if out["sha256"] != sha256 or out["file_size"] != len(data):
            raise BenchError(f"upload stored {out['file_size']} bytes, sha256 {out['sha256']}")
        file_id: int = out["id"]
        return file_id

    async def download(self, file_id: int, sink: Callable[[bytes], object]) -> int:
        total = 0
        async with self.http.stream("GET", f"/files/download/{file_id}") as response:
            if response.status_code != 200:
                await response.aread()
                raise BenchError(f"download answered {response.status_code}: {response.text[:500]}")
            async for chunk in response.aiter_raw():
                total += len(chunk)
                sink(chunk)
        return total

    async def download_redirected(self, file_id: int, sink: Callable[[bytes], object]) -> int:
        """`?redirect=true`, then the presigned link fetched without the token."""
        answer = await self.http.get(f"/files/download/{file_id}", params={"redirect": "true"})
        if answer.status_code != 307:
            raise BenchError(f"redirect answered {answer.status_code}: {answer.text[:500]}")
        return await self.fetch(answer.headers["location"], sink)

    async def fetch(self, url: str, sink: Callable[[bytes], object]) -> int:
        """GET a presigned link straight from the store (the client that follows redirects)."""
        total = 0
        async with self.store_http.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise BenchError(f"presigned GET answered {response.status_code}")
            async for chunk in response.aiter_raw():
                total += len(chunk)
                sink(chunk)
        return total

    async def verify(self, file_id: int, size: int, sha256: str) -> None:
        digest = hashlib.sha256()
        got = await self.download(file_id, digest.update)
        if got != size or digest.hexdigest() != sha256:
            raise BenchError(f"file {file_id}: downloaded {got} bytes, sha256 {digest.hexdigest()}")

    async def delete(self, file_id: int) -> None:
        response = await self.http.delete(f"/files/{file_id}")
        if response.status_code != 204:
            raise BenchError(f"delete answered {response.status_code}: {response.text[:500]}")

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.store_http.aclose()


# -- the benchmark ------------------------------------------------------------------------------


@dataclass
class Results:
    server_idle_rss: int = 0
    loads: list[float] = field(default_factory=list)
    direct_up: Series = field(default_factory=lambda: Series("direct put"))
    api_up: Series = field(default_factory=lambda: Series("API upload"))
    direct_down: Series = field(default_factory=lambda: Series("direct get"))
    direct_down_httpx: Series = field(default_factory=lambda: Series("direct get httpx"))
    api_down: Series = field(default_factory=lambda: Series("API download"))
    redirect_down: Series = field(default_factory=lambda: Series("redirect get"))
    direct_up_n: Series = field(default_factory=lambda: Series("direct put xN"))
    api_up_n: Series = field(default_factory=lambda: Series("API upload xN"))


def new_key() -> str:
    return f"bench/{uuid.uuid4().hex}"


class Bench:
    """The measurements, direct and through the API interleaved, each object checked after."""

    def __init__(self, s3: SeaweedFS, server: LiveServer, data: bytes, results: Results) -> None:
        self.s3 = s3
        self.data = data
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.watch = Watch(server.process.pid, s3.process.pid)
        self.direct = Direct(s3)
        self.api = ApiClient(server.base_url, server.admin().token or "")
        self.results = results
        self.devnull = open(os.devnull, "wb", buffering=0)  # closed in aclose()

    async def aclose(self) -> None:
        self.devnull.close()
        await self.api.aclose()

    async def warm_up(self) -> None:
        """Connections, lazy imports and first-request costs on both sides, then the idle RSS."""
        small = self.data[: 4 * MIB]
        small_sha = hashlib.sha256(small).hexdigest()
        key = new_key()
        await self.direct.put(key, small)
        await self.direct.verify(key, len(small), small_sha)
        await self.direct.delete(key)
        file_id = await self.api.upload(small, small_sha)
        await self.api.verify(file_id, len(small), small_sha)
        await self.api.delete(file_id)
        await asyncio.sleep(0.5)
        self.results.server_idle_rss = rss_of(self.watch.server_tree())

    def presigned_get(self, key: str) -> str:
        """A presigned GET of `key`, as the API's redirect gives one, without the API."""
        return presign(
            "GET",
            base_url=self.s3.url(),
            path=f"/{BUCKET}/{key}",
            credentials=Credentials(self.s3.access_key, self.s3.secret_key, self.s3.region),
            now=datetime.now(UTC),
            expires=timedelta(minutes=5),
        )

    async def direct_single(self) -> tuple[Run, Run, Run]:
        key = new_key()
        up, _ = await timed(self.watch, self.size, self.direct.put(key, self.data))
        get = expect(self.size, self.direct.get(key, self.devnull.write))
        down, _ = await timed(self.watch, self.size, get)
        fetched = expect(self.size, self.api.fetch(self.presigned_get(key), self.devnull.write))
        down_httpx, _ = await timed(self.watch, self.size, fetched)
        await self.direct.verify(key, self.size, self.sha256)
        await self.direct.delete(key)
        return up, down, down_httpx

    async def api_single(self) -> tuple[Run, Run, Run]:
        up, file_id = await timed(self.watch, self.size, self.api.upload(self.data, self.sha256))
        get = expect(self.size, self.api.download(file_id, self.devnull.write))
        down, _ = await timed(self.watch, self.size, get)
        redirected = expect(self.size, self.api.download_redirected(file_id, self.devnull.write))
        redirect, _ = await timed(self.watch, self.size, redirected)
        await self.api.verify(file_id, self.size, self.sha256)
        await self.api.delete(file_id)
        return up, down, redirect

    async def direct_many(self, n: int) -> Run:
        keys = [new_key() for _ in range(n)]
        puts = gather(self.direct.put(key, self.data) for key in keys)
        run, _ = await timed(self.watch, n * self.size, puts)
        for key in keys:
            await self.direct.verify(key, self.size, self.sha256)
            await self.direct.delete(key)
        return run

    async def api_many(self, n: int) -> Run:
        uploads = gather(self.api.upload(self.data, self.sha256) for _ in range(n))
        run, ids = await timed(self.watch, n * self.size, uploads)
        for file_id in ids:
            await self.api.verify(file_id, self.size, self.sha256)
            await self.api.delete(file_id)
        return run

    async def run(self, repeat: int, n: int) -> None:
        r = self.results
        await self.warm_up()
        print(f"server idle RSS {r.server_idle_rss / MIB:.0f} MiB", flush=True)
        # Direct first in odd runs, API first in even ones, so drift hits both sides alike.
        for attempt in range(1, repeat + 1):
            if attempt % 2:
                direct, api = await self.direct_single(), await self.api_single()
            else:
                api, direct = await self.api_single(), await self.direct_single()
            r.direct_up.runs.append(direct[0])
            r.direct_down.runs.append(direct[1])
            r.direct_down_httpx.runs.append(direct[2])
            r.api_up.runs.append(api[0])
            r.api_down.runs.append(api[1])
            r.redirect_down.runs.append(api[2])
            r.loads.append(os.getloadavg()[0])
            print(
                f"  single #{attempt}: up direct {direct[0].mib_s:6.1f} API {api[0].mib_s:6.1f}"
                f" | down direct {direct[1].mib_s:6.1f} (httpx {direct[2].mib_s:6.1f})"
                f" API {api[1].mib_s:6.1f} redirect {api[2].mib_s:6.1f} MiB/s"
                f" | load {r.loads[-1]:.2f}",
                flush=True,
            )
        for attempt in range(1, repeat + 1 if n else 1):
            if attempt % 2:
                direct_n, api_n = await self.direct_many(n), await self.api_many(n)
            else:
                api_n, direct_n = await self.api_many(n), await self.direct_many(n)
            r.direct_up_n.runs.append(direct_n)
            r.api_up_n.runs.append(api_n)
            r.loads.append(os.getloadavg()[0])
            print(
                f"  {n}x concurrent #{attempt}: direct {direct_n.mib_s:6.1f}"
                f" API {api_n.mib_s:6.1f} MiB/s aggregate"
                f" | server RSS peak {api_n.rss_peak / MIB:.0f} MiB | load {r.loads[-1]:.2f}",
                flush=True,
            )


async def run_bench(
    args: argparse.Namespace, s3: SeaweedFS, server: LiveServer, data: bytes, results: Results
) -> None:
    bench = Bench(s3, server, data, results)
    try:
        await bench.run(args.repeat, args.concurrency)
    finally:
        await bench.aclose()


async def gather(works: Iterable[Awaitable[T]]) -> list[T]:
    """All of `works` at once (started only when this is awaited)."""
    return list(await asyncio.gather(*works))


async def expect(size: int, transfer: Awaitable[int]) -> None:
    got = await transfer
    if got != size:
        raise BenchError(f"transferred {got} bytes, expected {size}")


# -- report -------------------------------------------------------------------------------------


def report(args: argparse.Namespace, size: int, results: Results, load_before: str) -> None:
    n, r = args.concurrency, results
    idle = r.server_idle_rss
    rows = [
        ("single upload", r.direct_up, r.api_up, GOAL_UPLOAD_RATIO),
        ("single download", r.direct_down, r.api_down, GOAL_DOWNLOAD_RATIO),
        (
            "download, ?redirect=true (httpx)",
            r.direct_down_httpx,
            r.redirect_down,
            GOAL_REDIRECT_RATIO,
        ),
        ("  same, vs obstore's GET", r.direct_down, r.redirect_down, None),
        ("direct GET: httpx vs obstore", r.direct_down, r.direct_down_httpx, None),
    ]
    if n:
        rows.append((f"{n}x concurrent upload (aggregate)", r.direct_up_n, r.api_up_n, None))
    print()
    print(f"file {size / MIB:.0f} MiB, median of {args.repeat} runs; machine: {machine_line()}")
    print(
        f"load average (1/5/15 min) before: {load_before}, after: {load_line()}; "
        f"1-min load during the runs: {min(r.loads):.2f}..{max(r.loads):.2f}"
    )
    print(
        f"server settings: upload_chunk_size {UPLOAD_CHUNK_SIZE // MIB} MiB, "
        f"upload_concurrency {UPLOAD_CONCURRENCY}, DOWNLOAD_CHUNK_SIZE "
        f"{DOWNLOAD_CHUNK_SIZE // 1024} KiB (the direct side uses the same)"
    )
    print()
    header = f"{'phase':<34} {'direct MiB/s':>12} {'API MiB/s':>10} {'API/direct':>10} {'goal':>6}"
    print(header)
    print("-" * len(header))
    for name, direct, api, goal in rows:
        ratio = api.mib_s() / direct.mib_s()
        goal_text = f">={goal:.2f}" if goal is not None else "-"
        print(
            f"{name:<34} {direct.mib_s():>12.1f} {api.mib_s():>10.1f} {ratio:>10.2f} {goal_text:>6}"
        )
    print()
    print("CPU seconds per 100 MiB moved (median), and the throughput ratio the CPU alone allows")
    print("when the three saturate this machine's cores alone (direct total / API total):")
    header = (
        f"{'phase':<34} {'direct: S3':>10} {'client':>7} {'| API: S3':>9} {'server':>7} "
        f"{'client':>7} {'CPU ratio':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, direct, api, _ in rows:
        direct_total = direct.cpu("s3") + direct.cpu("client") + direct.cpu("server")
        api_total = api.cpu("s3") + api.cpu("client") + api.cpu("server")
        print(
            f"{name:<34} {direct.cpu('s3'):>10.2f} {direct.cpu('client'):>7.2f} "
            f"{api.cpu('s3'):>9.2f} {api.cpu('server'):>7.2f} {api.cpu('client'):>7.2f} "
            f"{direct_total / api_total:>10.2f}"
        )
    print()
    print(f"server RSS: idle {idle / MIB:.0f} MiB (after warm-up); growth = peak - idle")
    for name, series in (
        ("single upload", r.api_up),
        ("single download", r.api_down),
        (f"{n}x concurrent upload", r.api_up_n),
    ):
        if not series.runs:
            continue
        print(
            f"  {name:<24} peak {series.peak_mib():5.0f} MiB, growth median "
            f"{series.growth_mib(idle):+5.0f} MiB, worst {series.worst_growth_mib(idle):+5.0f} MiB"
        )
    print()
    print("runs (MiB/s):")
    for series in (
        r.direct_up,
        r.api_up,
        r.direct_down,
        r.api_down,
        r.direct_down_httpx,
        r.redirect_down,
        r.direct_up_n,
        r.api_up_n,
    ):
        if not series.runs:
            continue
        print(f"  {series.name:<14} " + ", ".join(f"{run.mib_s:.1f}" for run in series.runs))
    print()
    up_ratio = r.api_up.mib_s() / r.direct_up.mib_s()
    down_ratio = r.api_down.mib_s() / r.direct_down.mib_s()
    growth = r.api_up.growth_mib(idle)
    redirect_ratio = r.redirect_down.mib_s() / r.direct_down_httpx.mib_s()
    cross_ratio = r.redirect_down.mib_s() / r.direct_down.mib_s()
    print("goals:")
    print(
        f"  download with ?redirect=true / direct GET, both httpx {redirect_ratio:.2f} >= "
        f"{GOAL_REDIRECT_RATIO:.2f}: {verdict(redirect_ratio >= GOAL_REDIRECT_RATIO)} "
        f"(vs obstore's GET: {cross_ratio:.2f})"
    )
    print(
        f"  upload API/direct {up_ratio:.2f} >= {GOAL_UPLOAD_RATIO:.2f}: "
        f"{verdict(up_ratio >= GOAL_UPLOAD_RATIO)}"
    )
    print(
        f"  download API/direct {down_ratio:.2f} >= {GOAL_DOWNLOAD_RATIO:.2f}: "
        f"{verdict(down_ratio >= GOAL_DOWNLOAD_RATIO)}"
    )
    print(
        f"  single-upload server RSS growth {growth:.0f} MiB <= {GOAL_RSS_GROWTH_MIB:.0f} MiB: "
        f"{verdict(growth <= GOAL_RSS_GROWTH_MIB)}"
    )
    if n:
        print(
            f"  {n}x concurrent upload API/direct "
            f"{r.api_up_n.mib_s() / r.direct_up_n.mib_s():.2f}, server RSS growth "
            f"{r.api_up_n.growth_mib(idle):.0f} MiB"
        )


# -- setup --------------------------------------------------------------------------------------


def backends(
    workdir: Path, max_file_size: int
) -> AbstractContextManager[tuple[SeaweedFS, LiveServer]]:
    """SeaweedFS, embedded PostgreSQL and a production-mode Filestore on them; all stopped after."""
    return s3_backends(workdir, "filestore_bench", {"MAX_FILE_SIZE": str(max_file_size)})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--size-mb",
        type=float,
        default=SEED_MAX_FILE_SIZE / MIB,
        help="file size in MiB (default 100 = the seed's MAX_FILE_SIZE)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="uploads at once in the concurrent phase (default 8; 0 skips it)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each measurement; the median is reported (default 3)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 0 or args.repeat < 1:
        parser.error("--concurrency must be at least 0 and --repeat at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = int(args.size_mb * MIB)
    load_before = load_line()
    print(f"machine: {machine_line()}; load average {load_before}", flush=True)
    data = make_payload(size)
    results = Results()
    with (
        tempfile.TemporaryDirectory(prefix="filestore-bench-") as tmp,
        backends(Path(tmp), max(size, SEED_MAX_FILE_SIZE)) as (s3, server),
    ):
        print(
            f"SeaweedFS at {s3.endpoint}, Filestore at {server.base_url}; "
            f"{size / MIB:.0f} MiB file, {args.repeat} runs each",
            flush=True,
        )
        try:
            asyncio.run(run_bench(args, s3, server, data, results))
        except BenchError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            print(server.log()[-3000:], file=sys.stderr)
            return 1
    report(args, size, results, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
