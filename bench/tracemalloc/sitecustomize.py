"""Bench-only: with `PYTHONPATH=bench/tracemalloc` and `FILESTORE_BENCH_TRACEMALLOC=<dir>`, a
Python process traces its allocations (tracemalloc) and every 30 s appends to `<dir>/<pid>.log`
the traced size, its peak and the 5 biggest allocation sites. Used by the soak
(`python bench/soak.py --env PYTHONPATH=bench/tracemalloc --env FILESTORE_BENCH_TRACEMALLOC=...`)
to tell a Python-level leak (traced memory grows with RSS) from malloc's arenas (it stays flat).
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

_DIR = os.environ.get("FILESTORE_BENCH_TRACEMALLOC")


def _report(path: Path) -> None:
    started = time.monotonic()
    while True:
        time.sleep(30)
        current, peak = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().statistics("lineno")[:5]
        with path.open("a") as out:
            out.write(f"{time.monotonic() - started:.0f}s traced {current / 1e6:.1f} MB peak ")
            out.write(f"{peak / 1e6:.1f} MB\n")
            for stat in top:
                out.write(f"    {stat}\n")


if _DIR:
    tracemalloc.start(1)
    target = Path(_DIR) / f"{os.getpid()}.log"
    threading.Thread(target=_report, args=(target,), daemon=True, name="tracemalloc").start()
