"""Small requests, two trees A/B: the server CPU per request of two checkouts of Filestore,
measured in alternating short phases against the same SeaweedFS and PostgreSQL.

Why: on a shared 2-core machine the CPU per request of one run swings 20-80% with the
neighbours' load, so two back-to-back `bench/small_requests.py` runs (minutes apart) often
disagree by more than the change under test. Here both servers run at once (one per tree, each
with its own venv's interpreter and its own database), and each route is measured in R rounds
of S seconds per server, alternating which goes first; the sums are compared. Drift then lands
on both sides alike.

Phases: `GET /files/{id}`, `GET /files/customer/{id}?limit=20`, `GET /auth/me`, download 4 KiB,
upload 4 KiB (and `direct GET 4 KiB`, once per round, for the ratio), 8 clients each as in
`small_requests.py`, whose `Bench` this reuses.

How to run (from the repo root of either tree; each TREE must have its `.venv`):
`python bench/small_ab.py A_TREE B_TREE [--rounds 4] [--seconds 3] [--only listing]
[--env-a NAME=VALUE]`; the same tree twice with `--env-a` compares a setting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import load_line, machine_line, postmaster
from small_requests import Bench, Phase, measure

PHASES = {
    "metadata": ("GET /files/{id}", "metadata"),
    "listing": ("GET /files/customer/{id}?limit=20", "listing"),
    "me": ("GET /auth/me", "me"),
    "download": ("download 4 KiB", "download"),
    "upload": ("upload 4 KiB", "upload"),
}


def start(tree: Path, workdir: Path, env: dict[str, str]) -> object:
    """`filestore serve` of `tree`, with that tree's interpreter."""
    from tests.fixtures import live

    saved = sys.executable
    sys.executable = str(tree / ".venv" / "bin" / "python")
    try:
        return live.start_server(workdir, env, extra_args=["--workers", "1"])
    finally:
        sys.executable = saved


async def run(benches: dict[str, Bench], args: argparse.Namespace) -> dict[str, list[Phase]]:
    for bench in benches.values():
        await bench.setup()
        await bench.idle()
    results: dict[str, list[Phase]] = {name: [] for name in benches}
    names = list(benches)
    wanted = [k for k in PHASES if not args.only or any(w in k for w in args.only)]
    direct: list[Phase] = []
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        first = benches[names[0]]
        direct.append(
            await measure(
                "direct GET 4 KiB", first.server, args.clients, args.seconds, first.direct_get
            )
        )
        for key in wanted:
            label, method = PHASES[key]
            for name in order:
                bench = benches[name]
                phase = await measure(
                    label,
                    bench.server,
                    args.clients,
                    args.seconds,
                    getattr(bench, method),
                    bench.others,
                )
                phase.server_cpu -= bench.idle_rate * phase.seconds
                results[name].append(phase)
    results["direct"] = direct
    return results


def summary(phases: list[Phase]) -> dict[str, tuple[float, float, float, float]]:
    """Per route: CPU ms per request, req/s, p99 ms, PostgreSQL CPU ms per request over all
    its rounds (the phases alternate, so PostgreSQL's CPU in a phase is that server's)."""
    out: dict[str, tuple[float, float, float, float]] = {}
    for label in dict.fromkeys(p.name for p in phases):
        mine = [p for p in phases if p.name == label]
        requests = sum(len(p.latencies) for p in mine)
        seconds = sum(p.seconds for p in mine)
        cpu = sum(p.server_cpu for p in mine)
        merged = Phase(label, [x for p in mine for x in p.latencies])
        database = sum(p.other_cpu.get("PG", 0.0) for p in mine)
        out[label] = (
            cpu / requests * 1000,
            requests / seconds,
            merged.pct(0.99),
            database / requests * 1000,
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("a", type=Path, help="the first tree (its .venv is used)")
    parser.add_argument("b", type=Path, help="the second tree")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--only", action="append", help="metadata, listing, me, download, upload")
    parser.add_argument("--client", choices=["lean", "httpx"], default="lean")
    for side in ("a", "b"):
        parser.add_argument(
            f"--env-{side}",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"a setting for tree {side.upper()}'s server only (repeatable)",
        )
    args = parser.parse_args()
    from tests.fixtures.live import production_env
    from tests.fixtures.servers import s3_env, start_embedded_postgres, start_seaweedfs

    print(f"machine: {machine_line()}; load average {load_line()}", flush=True)
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    with tempfile.TemporaryDirectory(prefix="filestore-bench-ab-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        s3 = start_seaweedfs(workdir / "seaweed")
        stack.callback(s3.stop)
        pg = start_embedded_postgres(workdir / "pgdata")
        stack.callback(pg.stop)
        benches = {}
        for name, tree in trees.items():
            env = production_env(pg.create_database(f"filestore_bench_ab_{name.lower()}"))
            env.update(s3_env(s3))
            env["LOG_LEVEL"] = "INFO"
            extra = args.env_a if name == "A" else args.env_b
            env.update(item.split("=", 1) for item in extra)
            server = start(tree, workdir / f"filestore-{name}", env)
            stack.callback(server.stop)  # type: ignore[attr-defined]
            benches[name] = Bench(
                s3,
                server,  # type: ignore[arg-type]
                args.clients,
                args.seconds,
                args.client,
            )
            benches[name].others = {"PG": postmaster(workdir / "pgdata")}
        results = asyncio.run(run(benches, args))
    direct = summary(results.pop("direct"))["direct GET 4 KiB"]
    a, b = summary(results["A"]), summary(results["B"])
    print(
        f"\n{args.rounds} rounds x {args.seconds:.0f} s per route and tree, {args.clients} "
        f"{args.client} clients, load average after {load_line()}; A = {trees['A']} {args.env_a}, "
        f"B = {trees['B']} {args.env_b}; "
        f"direct GET 4 KiB {direct[1]:.0f} req/s"
    )
    print(
        "| request | A CPU ms/req | B CPU ms/req | change | A req/s | B req/s | A p99 | B p99 "
        "| A PG ms/req | B PG ms/req |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label in a:
        (ca, ra, pa, da), (cb, rb, pb, db) = a[label], b[label]
        print(
            f"| {label} | {ca:.2f} | {cb:.2f} | {100 * (cb - ca) / ca:+.0f}% | {ra:.0f} | "
            f"{rb:.0f} | {pa:.1f} | {pb:.1f} | {da:.2f} | {db:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
