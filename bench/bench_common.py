"""Helpers every benchmark in `bench/` uses: machine and load lines, goal verdicts.

Imported as `bench_common` (the scripts run as `python bench/NAME.py`, so `bench/` is on
sys.path).
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any, Self

import psutil  # type: ignore[import-untyped]

MIB = 1024 * 1024


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
