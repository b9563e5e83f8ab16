"""Login throughput with the argon2id parameters in use, and proof that hashing does not stall
the event loop.

What it measures (embedded PostgreSQL and a live production-mode `filestore serve` on the local
store, all started in a temp dir and stopped at the end):

* the argon2id parameters of `filestore.auth.security.password_hasher()` and the time of one
  hash in this process (the floor of a login's cost);
* idle latency of `GET /health` (it queries PostgreSQL and the object store): N sequential
  requests with nothing else running; then N/2 logins one after another (one login's cost);
* a login storm: C clients (default 20) each logging in again and again as their own user
  (right password, so no lockout) for D seconds (default 10): logins/s and login latency;
* `GET /health` latency DURING the storm, sampled every 50 ms by one more client.

If hashing ran on the event loop, every login would freeze the server for one hash and a
/health request would wait behind up to C of them (C x one hash). Because `verify_password`
runs argon2 in a worker thread, /health during the storm stays within a small multiple of idle
(it still shares the CPU with the hashing; at most one hash per CPU runs at a time so the
event loop keeps a share). Goal: p95 of /health during the storm below half of C x one hash
(the average wait if hashing blocked the loop); missing it still exits 0 but says so.

How to run (from the repo root): `python bench/login.py [--clients 20] [--seconds 10]`.
Client and server share the machine's cores; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

# `tests.fixtures` lives in the repo, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from filestore.auth.security import hash_password_sync, password_hasher
from tests.fixtures.live import LiveServer, production_env, start_server
from tests.fixtures.servers import start_embedded_postgres


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {statistics.median(ms):6.1f} ms  p95 {percentile(ms, 0.95):6.1f} ms  "
        f"max {max(ms):6.1f} ms  (n={len(ms)})"
    )


def argon2_line() -> tuple[str, float]:
    hasher = password_hasher().hashers[0]
    sample = hasher.hash("sample")  # "$argon2id$v=19$m=19456,t=2,p=1$…": the parameters in use
    params = "argon2id " + sample.split("$")[3].replace(",", ", ") + " (m in KiB)"
    hash_password_sync("warm-up")
    times = []
    for i in range(10):
        started = time.perf_counter()
        hash_password_sync(f"bench-{i}")
        times.append(time.perf_counter() - started)
    return params, statistics.median(times)


@contextmanager
def backend(workdir: Path) -> Iterator[LiveServer]:
    with ExitStack() as stack:
        pg = start_embedded_postgres(workdir / "pgdata")
        stack.callback(pg.stop)
        env = production_env(pg.create_database("filestore_bench_login"))
        env["FILESTORE_DATA_DIR"] = str(workdir / "store")
        env["LOG_LEVEL"] = "WARNING"
        server = start_server(workdir / "filestore", env)
        stack.callback(server.stop)
        yield server


async def probe_health(
    client: httpx.AsyncClient, stop: asyncio.Event, *, interval: float
) -> list[float]:
    latencies: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        response = await client.get("/health")
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        await asyncio.sleep(interval)
    return latencies


async def run(
    server: LiveServer, clients: int, seconds: float, idle_samples: int
) -> dict[str, list[float]]:
    admin = server.admin()
    users = []
    for i in range(clients):
        username, password = f"bench-{i}-{uuid.uuid4().hex[:6]}", f"Bench-pw-{uuid.uuid4().hex}"
        response = admin.post(
            "/users", json={"username": username, "password": password, "role": "staff"}
        )
        assert response.status_code == 201, response.text
        users.append((username, password))

    limits = httpx.Limits(max_connections=clients + 5)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as client:
        idle = []
        for _ in range(idle_samples):
            started = time.perf_counter()
            assert (await client.get("/health")).status_code == 200
            idle.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)

        sequential = []
        username, password = users[0]
        for _ in range(idle_samples // 2):
            started = time.perf_counter()
            response = await client.post(
                "/auth/login", json={"username": username, "password": password}
            )
            assert response.status_code == 200, response.text
            sequential.append(time.perf_counter() - started)

        login_times: list[float] = []
        stop = asyncio.Event()

        async def storm(username: str, password: str) -> None:
            while not stop.is_set():
                started = time.perf_counter()
                response = await client.post(
                    "/auth/login", json={"username": username, "password": password}
                )
                assert response.status_code == 200, response.text
                login_times.append(time.perf_counter() - started)

        prober = asyncio.create_task(probe_health(client, stop, interval=0.05))
        workers = [asyncio.create_task(storm(u, p)) for u, p in users]
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - started
        during = await prober
    return {
        "idle": idle,
        "sequential": sequential,
        "during": during,
        "logins": login_times,
        "elapsed": [elapsed],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--clients", type=int, default=20, help="concurrent login clients (default 20)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10, help="length of the storm (default 10)"
    )
    parser.add_argument(
        "--idle-samples", type=int, default=50, help="idle /health requests (default 50)"
    )
    args = parser.parse_args(argv)

    params, one_hash = argon2_line()
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    print(f"password hashing: {params}; one hash {one_hash * 1000:.1f} ms in this process")
    with (
        tempfile.TemporaryDirectory(prefix="filestore-bench-login-") as tmp,
        backend(Path(tmp)) as server,
    ):
        results = asyncio.run(run(server, args.clients, args.seconds, args.idle_samples))
    logins = results["logins"]
    elapsed = results["elapsed"][0]
    print(f"one client, logins one after another: {summary(results['sequential'])}")
    print(f"\nlogin storm: {args.clients} clients for {elapsed:.1f} s")
    print(f"  logins/s          {len(logins) / elapsed:8.1f}  ({len(logins)} logins)")
    print(f"  login latency     {summary(logins)}")
    print(f"GET /health idle    {summary(results['idle'])}")
    print(f"GET /health storm   {summary(results['during'])}")
    stalled = one_hash * args.clients
    p95 = percentile(results["during"], 0.95)
    print(
        f"\nif hashing blocked the event loop, a request could wait ~{stalled * 1000:.0f} ms "
        f"({args.clients} x one hash); measured p95 {p95 * 1000:.1f} ms"
    )
    goal = stalled / 2
    print("goal met" if p95 < goal else f"GOAL MISSED: p95 >= {goal * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
