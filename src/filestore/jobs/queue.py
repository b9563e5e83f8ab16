"""Queue plumbing that knows no domain: the connector to PostgreSQL, the process pool for
password hashing, and running a worker of a procrastinate App.

Which tasks the App holds is decided above, in `filestore.worker`, from the domains'
blueprints."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

import procrastinate
import structlog

from filestore.db import libpq_url
from filestore.jobs import tasks as jobs_tasks
from filestore.jobs.resources import CONTEXT_KEY, WorkerResources

log = structlog.get_logger(__name__)


# psycopg_pool's own default is 30 s.
POOL_WAIT_SECONDS = 10.0


def connector(
    database_url: str, *, wait_seconds: float = POOL_WAIT_SECONDS
) -> procrastinate.PsycopgConnector:
    """A connector (a small pool, opened with the App) to the queue's tables in `database_url`.

    A checkout waits at most `wait_seconds` (DB_STATEMENT_TIMEOUT_SECONDS) for a connection.
    When PostgreSQL is cut off the pool cannot make one, and the worker only learns it when
    that wait ends: with psycopg_pool's default of 30 s, an in-process worker looked alive to
    `/health` for 30 s after the cut (tests/ops/test_worker_crash.py)."""
    return procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), min_size=1, max_size=4, timeout=wait_seconds
    )


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this hash process when the worker that started it dies.

    A SIGKILLed worker runs no cleanup, and its idle pool processes would wait for work
    forever (each holds the task queue's write end, so they never see end-of-file), one more
    set of orphans per crash. Linux's PR_SET_PDEATHSIG has the kernel kill them instead.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the worker died before prctl took effect
        os._exit(1)


def create_hash_pool() -> ProcessPoolExecutor:
    """Processes for argon2 hashing of imported passwords (spawned: no forked event loop)."""
    return ProcessPoolExecutor(
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )


async def run_worker(
    app: procrastinate.App,
    resources: WorkerResources,
    *,
    concurrency: int = 2,
    install_signal_handlers: bool = False,
) -> None:
    """Run a worker until cancelled (in-process) or signalled (`filestore worker`). Signalled,
    it takes no new job and gives running ones WORKER_SHUTDOWN_SECONDS to finish, then cancels
    them (an import then requeues itself from its checkpoint: `imports/tasks.py`)."""
    await app.run_worker_async(
        shutdown_graceful_timeout=resources.settings.worker_shutdown_seconds,
        concurrency=concurrency,
        install_signal_handlers=install_signal_handlers,
        additional_context={CONTEXT_KEY: resources},
        update_heartbeat_interval=jobs_tasks.HEARTBEAT_SECONDS,
        stalled_worker_timeout=jobs_tasks.STALLED_AFTER_SECONDS,
        fetch_job_polling_interval=1.0,
        delete_jobs="successful",
    )
