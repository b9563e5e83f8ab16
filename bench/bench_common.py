"""Helpers every benchmark in `bench/` uses: machine and load lines, goal verdicts.

Imported as `bench_common` (the scripts run as `python bench/NAME.py`, so `bench/` is on
sys.path).
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import psutil  # type: ignore[import-untyped]
from obstore.store import S3Store

if TYPE_CHECKING:
    from tests.fixtures.live import LiveServer
    from tests.fixtures.servers import SeaweedFS

MIB = 1024 * 1024
# SeaweedFS volume size for the benches (see s3_backends).
BENCH_VOLUME_MB = 1024


def machine_line() -> str:
    memory = psutil.virtual_memory().total / 1024**3
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory:.1f} GiB RAM, Python {platform.python_version()}"
    )


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def process_tree(process: Any) -> list[Any]:
    """`process` and its live descendants (empty once it is gone)."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def rss_of(processes: list[Any]) -> int:
    """Summed RSS of `processes` in bytes (a process that is gone counts 0)."""
    total = 0
    for process in processes:
        try:
            total += int(process.memory_info().rss)
        except psutil.Error:
            pass
    return total


def cpu_of(process: Any, *, reaped_children: bool = False) -> float:
    """CPU seconds (user + system) of `process`; with `reaped_children`, plus the children it
    has waited for."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    total = times.user + times.system
    if reaped_children:
        total += times.children_user + times.children_system
    return float(total)


def postmaster(pgdata: Path) -> Any:
    """The PostgreSQL server process of `pgdata` (its backends are its children)."""
    pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    return psutil.Process(pid)


def rss_of_tree(process: Any) -> int:
    """RSS of `process` plus all its children, in bytes (0 once it is gone)."""
    return rss_of(process_tree(process))


def cpu_of_tree(process: Any) -> float:
    """CPU seconds of `process`, its live children and its reaped children."""
    tree = process_tree(process)
    if not tree:
        return 0.0
    return cpu_of(tree[0], reaped_children=True) + sum(cpu_of(child) for child in tree[1:])


class PeriodicSampler:
    """Calls `sample()` in a thread every `interval` seconds while its `with` block runs, and
    once at each end of the block; subclasses say what one sample is."""

    interval = 0.02

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Self:
        self.sample()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def direct_store(s3: SeaweedFS, bucket: str) -> S3Store:
    """obstore straight to the S3 server's `bucket`, configured like the server's own store:
    the baseline of the API's transfers."""
    return S3Store(
        bucket,
        endpoint=s3.url(),
        access_key_id=s3.access_key,
        secret_access_key=s3.secret_key,
        region=s3.region,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "read_timeout": timedelta(seconds=60)},
    )


@contextmanager
def s3_backends(
    workdir: Path,
    database: str,
    settings: Mapping[str, str] | None = None,
    server_args: Sequence[str] = (),
) -> Iterator[tuple[SeaweedFS, LiveServer]]:
    """SeaweedFS, embedded PostgreSQL and a production-mode Filestore on them (with `settings`
    and `filestore serve` `server_args`); all stopped after. The script must have put the repo
    root on sys.path (for `tests.fixtures`)."""
    from tests.fixtures.live import production_env, start_server
    from tests.fixtures.servers import s3_env, start_embedded_postgres, start_seaweedfs

    with ExitStack() as stack:
        # Volumes of 1 GiB, not the tests' 64 MiB: every 64 MiB written the master grows a new
        # volume while writes wait (~50-100 ms), one or two stalls per 100 MiB upload on both
        # sides of a ratio. Eight obstore PUTs of 100 MiB: 27-39 MiB/s with 64 MiB volumes,
        # 35-58 with 1 GiB ones, back to back (docs/benchmarks.md).
        s3 = start_seaweedfs(workdir / "seaweed", volume_size_limit_mb=BENCH_VOLUME_MB)
        stack.callback(s3.stop)
        pg = start_embedded_postgres(workdir / "pgdata")
        stack.callback(pg.stop)
        env = production_env(pg.create_database(database))
        env.update(s3_env(s3))
        env.update(settings or {})
        server = start_server(workdir / "filestore", env, extra_args=server_args)
        stack.callback(server.stop)
        yield s3, server
