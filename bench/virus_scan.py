"""Upload time with VIRUS_SCAN=clamd against the same upload with scanning off.

What it measures, in one run (SeaweedFS as the S3 server, embedded PostgreSQL, a clamd started
by `tests/fixtures/clamd.py` with its one-signature EICAR database, and two production-mode
`filestore serve` processes on the same database server and S3: one with VIRUS_SCAN=off, one
with VIRUS_SCAN=clamd over loopback TCP; all started in a temp dir and stopped at the end):

* `POST /files/upload` wall time of one clean file (default 50 MiB) on each server, for two
  payloads: CSV text (`.csv`) and incompressible random bytes behind a PDF header (`.pdf`).
  Runs alternate between the servers (each goes first in turn); the median is reported with
  MiB/s and the overhead of scanning (scan / off - 1);
* for reference, a direct INSTREAM of the same bytes to the same clamd from this process: how
  much of the overhead is clamd's own receive-and-scan time.

Every upload must answer 201 with the right SHA-256 and, on the scanning server,
`scan_status: clean`; otherwise the run fails (exit 1).

clamd's scan time grows with its signature database; with the official databases (millions of
signatures, not downloadable here) expect the post-upload verdict wait to be longer than with
this one-signature database. The tee itself (sending each chunk to clamd while it is stored)
does not depend on the database.

How to run (from the repo root; needs clamd, e.g. Debian's clamav-daemon):
`python bench/virus_scan.py [--size-mb 50] [--repeat 5]`.
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

# `tests.fixtures` lives in the repo, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # type: ignore[import-untyped]

from filestore.files import scan as scanning
from tests.fixtures.clamd import Clamd, clamd_binary, start_clamd
from tests.fixtures.live import Api, LiveServer, production_env, start_server
from tests.fixtures.servers import LOOPBACK, s3_env, start_embedded_postgres, start_seaweedfs

MIB = 1024 * 1024
CHUNK = 64 * 1024


def payloads(size: int) -> dict[str, tuple[str, bytes]]:
    line = b"Jane Doe,jane.doe@example.com,5551234567,1 Main St,Springfield,IL,62701,US\n"
    text = (
        b"full_name,email,phone,address,city,state,postal_code,country\n"
        + line * (size // len(line))
    )[:size]
    binary = b"%PDF-1.7\n" + os.urandom(size - 9)
    return {"csv": ("bench.csv", text), "pdf": ("bench.pdf", binary)}


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def timed_upload(
    api: Api,
    customer_id: int,
    name: str,
    data: bytes,
    *,
    scanning_on: bool,
    watched: dict[str, psutil.Process],
    cpu: dict[str, list[float]],
) -> float:
    before = {who: cpu_seconds(process) for who, process in watched.items()}
    started = time.perf_counter()
    response = api.upload(data, name, customer_id=customer_id)
    elapsed = time.perf_counter() - started
    for who, process in watched.items():
        cpu.setdefault(who, []).append(cpu_seconds(process) - before[who])
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:300]}")
    body = response.json()
    if body["sha256"] != hashlib.sha256(data).hexdigest():
        raise RuntimeError("stored SHA-256 differs from the uploaded bytes'")
    expected = "clean" if scanning_on else "disabled"
    if body["scan_status"] != expected:
        raise RuntimeError(f"scan_status {body['scan_status']!r}, expected {expected!r}")
    return elapsed


async def direct_scan(clamd: Clamd, data: bytes) -> tuple[float, float]:
    """Seconds to stream `data` to clamd, and to get the verdict after the last byte."""
    client = scanning.ClamdClient(
        host=LOOPBACK, port=clamd.port or 0, socket_path=None, timeout=120
    )
    started = time.perf_counter()
    session = await client.instream()
    try:
        view = memoryview(data)
        for offset in range(0, len(data), CHUNK):
            await session.feed(view[offset : offset + CHUNK])
        streamed = time.perf_counter()
        verdict = await session.verdict()
    finally:
        session.close()
    if not verdict.clean:
        raise RuntimeError(f"direct scan not clean: {verdict}")
    return streamed - started, time.perf_counter() - streamed


@contextmanager
def backends(workdir: Path, max_file_size: int) -> Iterator[tuple[Clamd, LiveServer, LiveServer]]:
    with ExitStack() as stack:
        s3 = start_seaweedfs(workdir / "seaweed")
        stack.callback(s3.stop)
        pg = start_embedded_postgres(workdir / "pgdata")
        stack.callback(pg.stop)
        clamd = start_clamd(workdir / "clamd")
        stack.callback(clamd.stop)
        servers = []
        for mode in ("off", "clamd"):
            env = production_env(pg.create_database(f"filestore_bench_scan_{mode}"))
            env |= s3_env(s3) | {"MAX_FILE_SIZE": str(max_file_size)}
            if mode == "clamd":
                env |= clamd.env()
            server = start_server(workdir / f"filestore-{mode}", env)
            stack.callback(server.stop)
            servers.append(server)
        yield clamd, servers[0], servers[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=50, help="file size in MiB (default 50)")
    parser.add_argument("--repeat", type=int, default=5, help="uploads per server and payload")
    args = parser.parse_args(argv)
    if clamd_binary() is None:
        print("clamd is not installed (apt-get install clamav-daemon)", file=sys.stderr)
        return 1
    size = int(args.size_mb * MIB)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="filestore-bench-scan-") as tmp,
        backends(Path(tmp), max(size, 100 * MIB)) as (clamd, off, on),
    ):
        apis = {"off": off.admin(), "clamd": on.admin()}
        customers = {mode: int(api.new_customer()["id"]) for mode, api in apis.items()}
        watched = {
            "off": {"server": psutil.Process(off.process.pid)},
            "clamd": {
                "server": psutil.Process(on.process.pid),
                "clamd": psutil.Process(clamd.process.pid),
            },
        }
        for kind, (name, data) in payloads(size).items():
            times: dict[str, list[float]] = {"off": [], "clamd": []}
            cpu: dict[str, dict[str, list[float]]] = {"off": {}, "clamd": {}}
            for run in range(args.repeat):
                order = ["off", "clamd"] if run % 2 == 0 else ["clamd", "off"]
                for mode in order:
                    elapsed = timed_upload(
                        apis[mode],
                        customers[mode],
                        name,
                        data,
                        scanning_on=mode == "clamd",
                        watched=watched[mode],
                        cpu=cpu[mode],
                    )
                    times[mode].append(elapsed)
            direct = [asyncio.run(direct_scan(clamd, data)) for _ in range(3)]
            stream_s = statistics.median(d[0] for d in direct)
            verdict_s = statistics.median(d[1] for d in direct)
            off_s, on_s = statistics.median(times["off"]), statistics.median(times["clamd"])
            print(
                f"{kind}: {size / MIB:.0f} MiB, median of {args.repeat}: "
                f"scanning off {off_s:.3f} s ({size / MIB / off_s:.0f} MiB/s), "
                f"clamd {on_s:.3f} s ({size / MIB / on_s:.0f} MiB/s), "
                f"overhead {on_s - off_s:+.3f} s ({on_s / off_s - 1:+.0%}); "
                f"direct INSTREAM of the same bytes: stream {stream_s:.3f} s + verdict "
                f"{verdict_s:.3f} s; "
                f"best: off {min(times['off']):.3f} s, clamd {min(times['clamd']):.3f} s",
                flush=True,
            )
            median_cpu = {
                f"{mode}/{who}": statistics.median(values)
                for mode, per in cpu.items()
                for who, values in per.items()
            }
            print(
                "  CPU seconds per upload (median): "
                + ", ".join(f"{name} {value:.3f}" for name, value in median_cpu.items()),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
