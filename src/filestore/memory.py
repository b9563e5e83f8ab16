"""glibc malloc arenas: at most `MALLOC_ARENA_MAX` per process (default 2).

glibc gives each thread that allocates while another holds the main arena an arena of its own,
up to 8 per core, and rarely returns their memory to the system. The API process has threads
(anyio's thread pool for file I/O and password hashing, the S3 client's), so a soak of mixed
traffic grew its RSS from 146 MiB to 437 MiB in 5 minutes (537 MB in 10), still growing. With
two arenas it stayed within 249 MiB, 209 MiB at the end (docs/benchmarks.md, "Soak").

`limit_arenas` calls `mallopt(M_ARENA_MAX, n)` in this process, effective for the arenas not
created yet (so: at startup, before the threads), and exports `MALLOC_ARENA_MAX` so the
processes it starts (uvicorn's `--workers`, the hashing pool, embedded PostgreSQL) read it from
their environment at their start. Not glibc (musl, macOS): nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import structlog

log = structlog.get_logger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_arenas(arena_max: int) -> bool:
    """At most `arena_max` malloc arenas (0: glibc's own default); True when glibc took it."""
    if arena_max <= 0:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arena_max)
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_ARENA_MAX, arena_max))
    if not applied:
        log.warning("memory.arena_max_refused", arena_max=arena_max)
    return applied
