"""Helpers every benchmark in `bench/` uses: machine and load lines, goal verdicts.

Imported as `bench_common` (the scripts run as `python bench/NAME.py`, so `bench/` is on
sys.path).
"""

from __future__ import annotations

import os
import platform

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
