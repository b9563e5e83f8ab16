"""Every way in against a direct S3 PUT of the same bytes: tus through the API, and a direct
upload (presigned PUT straight to S3, then `complete`).

What it measures, in one run (SeaweedFS, embedded PostgreSQL and a production-mode
`filestore serve`, all started in a temp dir and stopped at the end; `bench/upload.py`'s
machinery):

* direct: `obstore.put_async` of one file (default 100 MiB of random bytes that sniff as a
  PDF) with the server's own part size and concurrency = 1.00;
* tus in 5 MiB chunks and in 50 MiB chunks through `/files/tus` (POST, then one PATCH per
  chunk, the last one waiting for verification: the object is read back once for MD5 +
  SHA-256 and sniffing, and the row written), wall time from the POST to the final 204;
* direct 1 PUT: the same bytes in one presigned PUT straight to S3 with the headers a direct
  upload signs (`Content-Length`, `x-amz-checksum-sha256`, `If-None-Match: *`), by httpx, no
  API: the transport a direct upload uses (one stream, where obstore's PUT runs 4 parts at
  once);
* a direct upload: `POST /files/direct-uploads`, the presigned PUT of the whole file with the
  signed headers (httpx, one request, to the file's final key), `POST .../complete` (the API
  checks size and SHA-256 from the store's HEAD, sniffs a ranged GET, completes the row); wall
  time from the reservation to the 201, and the API server's CPU seconds for it. Its goal
  ratio is like for like, `presigned / direct 1 PUT`: the same client library making the same
  single PUT, so the ratio is what the API adds (reserve + complete). The ratio to obstore's
  4-part PUT is printed too; it also measures httpx-vs-obstore and one stream vs four;
* with `--peer DIR`: the peer, @tus/server + @tus/s3-store (Node, `bench/tus_peer.mjs`, run
  from DIR where `npm install @tus/server @tus/s3-store` was done) on the same SeaweedFS and
  bucket, the same bytes in 50 MiB chunks (`tus peer`; its "server" CPU is the Node process);
  the stored object's SHA-256 is checked;
* 8 concurrent tus uploads in 5 MiB chunks: aggregate throughput and the server's RSS growth
  (peak during the phase minus idle after a warm-up);
* CPU seconds per 100 MiB of the API server, the S3 server and this client in every phase.

Each measurement is repeated (default 3, direct and tus taking turns to go first) and the
median reported. Every tus upload carries `checksum_sha256` in its metadata, so the server
refuses a wrong file and the run fails (exit 1) instead of looking fast; a direct upload's
PUT is signed with its SHA-256, and its stored SHA-256 is checked too. Goals: tus with 50 MiB
chunks >= 0.80 of the direct PUT; direct upload >= 0.95 of direct 1 PUT with <= 0.05 API CPU s
per 100 MiB; RSS growth for 8 concurrent uploads <= 8 x 24 MiB.
Missing a goal still exits 0.

How to run (from the repo root): `python bench/tus.py [--size-mb 100] [--repeat 3]
[--concurrency 8] [--phases "tus 50 MiB,presigned"]` (`direct` always runs: it is the 1.00;
`--concurrency 0` skips the 8x phase). A few minutes on a 2-core machine; run it on an
otherwise idle machine (the load average is printed with the results).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

# `bench/upload.py` and `tests.fixtures` live in the repo, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from bench_common import MIB, load_line, machine_line, rss_of, verdict
from upload import (
    BUCKET,
    HTTP_TIMEOUT,
    SEED_MAX_FILE_SIZE,
    BenchError,
    Direct,
    Run,
    Series,
    Watch,
    backends,
    gather,
    make_payload,
    new_key,
    timed,
)

from filestore.storage.presign import Credentials, presign
from tests.fixtures.live import LiveServer
from tests.fixtures.servers import SeaweedFS

GOAL_TUS_RATIO = 0.80
GOAL_PRESIGNED_RATIO = 0.95
GOAL_PRESIGNED_API_CPU = 0.05
GOAL_RSS_PER_UPLOAD_MIB = 24.0
PHASES = ("direct", "tus 5 MiB", "tus 50 MiB", "tus peer", "direct 1 PUT", "presigned")
PEER_SCRIPT = Path(__file__).resolve().parent / "tus_peer.mjs"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def slices(body: memoryview) -> AsyncIterator[bytes]:
    """`body` in 1 MiB pieces, as a client reading a file sends it (no copy of the whole
    chunk first; httpx keeps the `Content-Length` given)."""
    for start in range(0, len(body), MIB):
        yield body[start : start + MIB]  # type: ignore[misc]


async def patch_all(
    http: httpx.AsyncClient,
    url: str,
    data: bytes,
    chunk: int,
    what: str,
    seconds: list[float] | None = None,
) -> httpx.Response:
    """PATCH `data` to a tus upload at `url` in `chunk`-byte requests; the last answer. Each
    request's wall seconds are appended to `seconds` when given."""
    view = memoryview(data)
    response: httpx.Response | None = None
    for offset in range(0, len(data), chunk):
        started = time.perf_counter()
        body = view[offset : offset + chunk]
        response = await http.patch(
            url,
            content=slices(body),
            headers={
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(len(body)),
                "Upload-Offset": str(offset),
            },
        )
        if response.status_code != 204:
            raise BenchError(f"{what} answered {response.status_code}: {response.text[:300]}")
        if seconds is not None:
            seconds.append(time.perf_counter() - started)
    assert response is not None
    return response


class TusClient:
    """A minimal tus 1.0.0 client over one httpx connection pool."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"},
            timeout=HTTP_TIMEOUT,
        )
        # Seconds of each direct upload's steps: reserve, PUT, complete.
        self.steps: list[tuple[float, float, float]] = []
        # Seconds of each tus upload's steps, by chunk size: create, then each PATCH (the last
        # one includes verification and the row).
        self.tus_steps: dict[int, list[list[float]]] = {}

    async def upload(self, data: bytes, sha256: str, chunk: int, *, record: bool = True) -> int:
        metadata = f"filename {_b64('bench.pdf')},checksum_sha256 {_b64(sha256)}"
        started = time.perf_counter()
        created = await self.http.post(
            "/files/tus", headers={"Upload-Length": str(len(data)), "Upload-Metadata": metadata}
        )
        if created.status_code != 201:
            raise BenchError(f"tus create answered {created.status_code}: {created.text[:300]}")
        steps = [time.perf_counter() - started]
        url = created.headers["Location"]
        response = await patch_all(self.http, url, data, chunk, "PATCH", steps)
        if record:
            self.tus_steps.setdefault(chunk, []).append(steps)
        file_id = int(response.headers["Filestore-File-Id"])
        out = (await self.http.get(f"/files/{file_id}")).json()
        if out["sha256"] != sha256 or out["file_size"] != len(data):
            raise BenchError(f"tus stored {out['file_size']} bytes, sha256 {out['sha256']}")
        return file_id

    async def presigned(self, data: bytes, sha256: str) -> int:
        """A direct upload: reserve, PUT to the store, complete; returns the file id."""
        started = time.perf_counter()
        reserved = await self.http.post(
            "/files/direct-uploads",
            json={"filename": "bench.pdf", "file_size": len(data), "sha256": sha256},
        )
        if reserved.status_code != 201:
            raise BenchError(f"reserve answered {reserved.status_code}: {reserved.text[:300]}")
        ticket = reserved.json()
        signed = time.perf_counter()
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as s3:
            put = await s3.put(ticket["url"], content=data, headers=ticket["headers"])
        stored = time.perf_counter()
        if put.status_code != 200:
            raise BenchError(f"presigned PUT answered {put.status_code}: {put.text[:300]}")
        done = await self.http.post(f"/files/direct-uploads/{ticket['upload_id']}/complete")
        if done.status_code != 201:
            raise BenchError(f"complete answered {done.status_code}: {done.text[:300]}")
        finished = time.perf_counter()
        self.steps.append((signed - started, stored - signed, finished - stored))
        out = done.json()
        if out["sha256"] != sha256 or out["file_size"] != len(data):
            raise BenchError(f"direct upload stored {out['file_size']} bytes, {out['sha256']}")
        return int(out["id"])

    async def delete(self, file_id: int) -> None:
        await self.http.delete(f"/files/{file_id}")

    async def aclose(self) -> None:
        await self.http.aclose()


async def single_put(s3: SeaweedFS, key: str, data: bytes, sha256: str) -> None:
    """One presigned PUT to the store, signed like a direct upload's."""
    headers = {
        "Content-Length": str(len(data)),
        "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha256)).decode(),
        "If-None-Match": "*",
    }
    url = presign(
        "PUT",
        base_url=s3.url(),
        path=f"/{BUCKET}/{key}",
        credentials=Credentials(s3.access_key, s3.secret_key, s3.region),
        now=datetime.now(UTC),
        expires=timedelta(minutes=15),
        headers=headers,
    )
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        put = await client.put(url, content=data, headers=headers)
    if put.status_code != 200:
        raise BenchError(f"single PUT answered {put.status_code}: {put.text[:300]}")


class Peer:
    """@tus/server + @tus/s3-store (Node) on the bench's SeaweedFS, and a plain tus client."""

    def __init__(self, directory: Path, s3: SeaweedFS) -> None:
        shutil.copy(PEER_SCRIPT, directory / PEER_SCRIPT.name)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "PORT": str(port),
            "S3_BUCKET": BUCKET,
            "S3_REGION": s3.region,
            "S3_ENDPOINT": s3.url(),
            "S3_ACCESS_KEY": s3.access_key,
            "S3_SECRET_KEY": s3.secret_key,
        }
        self.process = subprocess.Popen(
            ["node", PEER_SCRIPT.name], cwd=directory, env=env, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        if b"tus peer on" not in self.process.stdout.readline():
            raise BenchError("the tus peer did not start")
        self.http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Tus-Resumable": "1.0.0"},
            timeout=HTTP_TIMEOUT,
        )

    async def upload(self, data: bytes, chunk: int) -> str:
        """POST, then one PATCH per chunk; the object's key (the upload id)."""
        created = await self.http.post("/files", headers={"Upload-Length": str(len(data))})
        if created.status_code != 201:
            raise BenchError(f"peer create answered {created.status_code}: {created.text[:300]}")
        url = created.headers["Location"]
        await patch_all(self.http, url, data, chunk, "peer PATCH")
        return url.rstrip("/").rsplit("/", 1)[1]

    async def aclose(self) -> None:
        await self.http.aclose()
        self.process.terminate()
        self.process.wait(timeout=10)


class Bench:
    def __init__(
        self, s3: SeaweedFS, server: LiveServer, data: bytes, peer: Peer | None = None
    ) -> None:
        self.s3 = s3
        self.data = data
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.watch = Watch(server.process.pid, s3.process.pid)
        self.direct = Direct(s3)
        self.tus = TusClient(server.base_url, server.admin().token or "")
        self.peer = peer
        self.peer_watch = None if peer is None else Watch(peer.process.pid, s3.process.pid)
        self.idle_rss = 0
        self.loads: list[float] = []
        self.series = {
            name: Series(name)
            for name in (
                "direct",
                "tus 5 MiB",
                "tus 50 MiB",
                "tus peer",
                "direct 1 PUT",
                "presigned",
                "tus xN",
            )
        }

    async def direct_put(self) -> Run:
        key = new_key()
        run, _ = await timed(self.watch, self.size, self.direct.put(key, self.data))
        await self.direct.verify(key, self.size, self.sha256)
        await self.direct.delete(key)
        return run

    async def tus_put(self, chunk: int) -> Run:
        run, file_id = await timed(
            self.watch, self.size, self.tus.upload(self.data, self.sha256, chunk)
        )
        await self.tus.delete(file_id)
        return run

    async def peer_put(self) -> Run:
        assert self.peer is not None
        assert self.peer_watch is not None
        run, key = await timed(self.peer_watch, self.size, self.peer.upload(self.data, 50 * MIB))
        await self.direct.verify(key, self.size, self.sha256)
        await self.direct.delete(key)
        await self.direct.delete(f"{key}.info")
        return run

    async def single_put(self) -> Run:
        key = new_key()
        run, _ = await timed(
            self.watch, self.size, single_put(self.s3, key, self.data, self.sha256)
        )
        await self.direct.verify(key, self.size, self.sha256)
        await self.direct.delete(key)
        return run

    async def presigned_put(self) -> Run:
        run, file_id = await timed(
            self.watch, self.size, self.tus.presigned(self.data, self.sha256)
        )
        await self.tus.delete(file_id)
        return run

    async def tus_many(self, n: int) -> Run:
        uploads = gather(
            self.tus.upload(self.data, self.sha256, 5 * MIB, record=False) for _ in range(n)
        )
        run, ids = await timed(self.watch, n * self.size, uploads)
        for file_id in ids:
            await self.tus.delete(file_id)
        return run

    async def run(self, repeat: int, n: int, phases: list[str]) -> None:
        small = self.data[: 6 * MIB]
        await self.tus.delete(await self.tus.upload(small, hashlib.sha256(small).hexdigest(), MIB))
        await self.direct_put()
        await asyncio.sleep(0.5)
        self.idle_rss = rss_of(self.watch.server_tree())
        print(f"server idle RSS {self.idle_rss / MIB:.0f} MiB", flush=True)
        s = self.series
        for attempt in range(1, repeat + 1):
            order = ["direct", *phases]
            if attempt % 2 == 0:
                order.reverse()
            runs: dict[str, Run] = {}
            for name in order:
                if name == "direct":
                    runs[name] = await self.direct_put()
                elif name == "presigned":
                    runs[name] = await self.presigned_put()
                elif name == "tus peer":
                    runs[name] = await self.peer_put()
                elif name == "direct 1 PUT":
                    runs[name] = await self.single_put()
                else:
                    runs[name] = await self.tus_put((5 if name == "tus 5 MiB" else 50) * MIB)
                s[name].runs.append(runs[name])
            self.loads.append(os.getloadavg()[0])
            shown = "  ".join(f"{name} {runs[name].mib_s:6.1f}" for name in PHASES if name in runs)
            print(f"  #{attempt}: {shown} MiB/s | load {self.loads[-1]:.2f}", flush=True)
        for attempt in range(1, repeat + 1 if n else 1):
            run = await self.tus_many(n)
            s["tus xN"].runs.append(run)
            self.loads.append(os.getloadavg()[0])
            print(
                f"  {n}x tus #{attempt}: {run.mib_s:6.1f} MiB/s aggregate, server RSS peak "
                f"{run.rss_peak / MIB:.0f} MiB | load {self.loads[-1]:.2f}",
                flush=True,
            )

    def report(self, n: int, load_before: str) -> None:
        s = self.series
        direct = s["direct"].mib_s()
        print(f"\nload average before {load_before}, after {load_line()}")
        print(
            f"{'':12} {'MiB/s':>8} {'ratio':>6} {'paired (min-max)':>18} "
            f"{'CPU s/100 MiB: server':>22} {'s3':>6} {'client':>7}"
        )
        for name in PHASES:
            series = s[name]
            if not series.runs:
                continue
            # Each run against the direct PUT of the same attempt: the load drifts less
            # within one attempt than across the whole run.
            paired = [
                run.mib_s / base.mib_s
                for run, base in zip(series.runs, s["direct"].runs, strict=False)
            ]
            spread = f"{statistics.median(paired):.2f} ({min(paired):.2f}-{max(paired):.2f})"
            print(
                f"{name:12} {series.mib_s():8.1f} {series.mib_s() / direct:6.2f} {spread:>18} "
                f"{series.cpu('server'):22.3f} {series.cpu('s3'):6.2f} {series.cpu('client'):7.2f}"
            )
        if s["tus xN"].runs:
            growth = s["tus xN"].growth_mib(self.idle_rss)
            worst = s["tus xN"].worst_growth_mib(self.idle_rss)
            print(
                f"{n}x tus (5 MiB chunks): {s['tus xN'].mib_s():.1f} MiB/s aggregate; server RSS "
                f"growth {growth:.0f} MiB (worst {worst:.0f}); server CPU "
                f"{s['tus xN'].cpu('server'):.2f} s/100 MiB"
            )
            limit = n * GOAL_RSS_PER_UPLOAD_MIB
            print(f"goal RSS growth <= {limit:.0f} MiB: {worst:.0f} {verdict(worst <= limit)}")
        if s["tus 50 MiB"].runs:
            ratio = s["tus 50 MiB"].mib_s() / direct
            ok = verdict(ratio >= GOAL_TUS_RATIO)
            print(f"goal tus 50 MiB >= {GOAL_TUS_RATIO} of direct: {ratio:.2f} {ok}")
        if s["tus peer"].runs:
            peer = s["tus peer"].mib_s() / direct
            line = f"peer @tus/server + @tus/s3-store, 50 MiB chunks: {peer:.2f} of direct"
            if s["tus 50 MiB"].runs:
                line += f"; ours / peer {s['tus 50 MiB'].mib_s() / s['tus peer'].mib_s():.2f}"
            print(line)
        if s["presigned"].runs and s["direct 1 PUT"].runs:
            like = s["presigned"].mib_s() / s["direct 1 PUT"].mib_s()
            cross = s["presigned"].mib_s() / direct
            print(
                f"goal presigned >= {GOAL_PRESIGNED_RATIO} of direct 1 PUT (both one httpx PUT): "
                f"{like:.2f} {verdict(like >= GOAL_PRESIGNED_RATIO)}; vs obstore's 4-part PUT "
                f"{cross:.2f}; direct 1 PUT / obstore {s['direct 1 PUT'].mib_s() / direct:.2f}"
            )
        if self.tus.steps:
            reserve, put, complete = (
                statistics.median(step[i] for step in self.tus.steps) for i in range(3)
            )
            print(
                f"presigned steps (median s): reserve {reserve:.3f}, PUT {put:.3f}, "
                f"complete {complete:.3f}"
            )
        for chunk, runs in sorted(self.tus.tus_steps.items()):
            if chunk != MIB and len({len(steps) for steps in runs}) == 1:
                medians = [statistics.median(column) for column in zip(*runs, strict=True)]
                shown = ", ".join(f"{value:.3f}" for value in medians)
                print(f"tus {chunk // MIB} MiB steps (median s): create, each PATCH: {shown}")
        if s["presigned"].runs:
            cpu = s["presigned"].cpu("server")
            print(
                f"goal API CPU per direct upload <= {GOAL_PRESIGNED_API_CPU} s/100 MiB: {cpu:.3f} "
                f"{verdict(cpu <= GOAL_PRESIGNED_API_CPU)}"
            )
        print(f"median load during the runs {statistics.median(self.loads):.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=SEED_MAX_FILE_SIZE / MIB)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="0 skips the 8x phase")
    parser.add_argument(
        "--peer",
        type=Path,
        help="a directory with @tus/server and @tus/s3-store installed: adds `tus peer`",
    )
    parser.add_argument(
        "--phases",
        default=",".join(name for name in PHASES[1:] if name != "tus peer"),
        help=f"comma-separated, of: {', '.join(PHASES[1:])} (direct always runs)",
    )
    args = parser.parse_args(argv)
    phases = [name.strip() for name in args.phases.split(",") if name.strip()]
    unknown = set(phases) - set(PHASES[1:])
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.peer is not None and "tus peer" not in phases:
        phases.insert(phases.index("tus 50 MiB") + 1 if "tus 50 MiB" in phases else 0, "tus peer")
    if "tus peer" in phases and args.peer is None:
        parser.error("the `tus peer` phase needs --peer DIR")
    size = int(args.size_mb * MIB)
    load_before = load_line()
    print(f"machine: {machine_line()}; load average {load_before}", flush=True)
    data = make_payload(size)
    with (
        tempfile.TemporaryDirectory(prefix="filestore-bench-tus-") as tmp,
        backends(Path(tmp), max(size, SEED_MAX_FILE_SIZE)) as (s3, server),
    ):
        peer = None if args.peer is None else Peer(args.peer.resolve(), s3)
        bench = Bench(s3, server, data, peer)

        async def go() -> None:
            try:
                await bench.run(args.repeat, args.concurrency, phases)
            finally:
                await bench.tus.aclose()
                if peer is not None:
                    await peer.aclose()

        try:
            asyncio.run(go())
        except BenchError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            print(server.log()[-3000:], file=sys.stderr)
            return 1
    bench.report(args.concurrency, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
