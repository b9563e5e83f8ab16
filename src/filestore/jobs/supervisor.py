"""Keeps a worker running inside the API process: a crash is logged with its traceback,
reported (`/health`), and followed by a restart after a backoff.

procrastinate's worker ends in two ways besides being cancelled: it raises (its database went
away while fetching a job), or it returns, having stopped itself because one of its side tasks
failed (the LISTEN connection could not reconnect). Both leave the API without a worker, and
before this module nobody noticed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 60.0
# A worker that ran this long before dying is restarted after the first delay again.
STABLE_AFTER_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class WorkerStopped(RuntimeError):
    """The worker returned although nobody asked it to stop."""


@dataclass(frozen=True)
class Backoff:
    first: float = FIRST_DELAY_SECONDS
    maximum: float = MAX_DELAY_SECONDS
    stable_after: float = STABLE_AFTER_SECONDS

    def next(self, previous: float | None, ran_for: float) -> float:
        """The delay before the next start: doubled after each quick crash, capped."""
        if previous is None or ran_for >= self.stable_after:
            return self.first
        return min(previous * 2, self.maximum)


class WorkerSupervisor:
    """Runs `run()` as a task, restarting it with backoff whenever it ends by itself."""

    def __init__(self, run: Callable[[], Awaitable[None]], *, backoff: Backoff = Backoff()) -> None:
        self._run = run
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self.crashes = 0
        self.last_error: str | None = None

    @property
    def alive(self) -> bool:
        """True while the worker runs (not while it waits to be restarted)."""
        return self._running and self._task is not None and not self._task.done()

    def status(self) -> dict[str, Any]:
        return {
            "status": "running" if self.alive else "down",
            "crashes": self.crashes,
            "last_error": self.last_error,
        }

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="filestore-worker")

    async def _loop(self) -> None:
        delay: float | None = None
        while True:
            started = time.monotonic()
            self._running = True
            try:
                await self._run()
                raise WorkerStopped("the job worker stopped by itself")
            except Exception as exc:
                self._running = False
                self.crashes += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                delay = self._backoff.next(delay, time.monotonic() - started)
                log.exception("worker.crashed", crashes=self.crashes, restart_in_seconds=delay)
            await asyncio.sleep(delay)
            log.info("worker.restarting", crashes=self.crashes)

    async def stop(self) -> None:
        """Cancel the worker (it finishes its jobs' current step) and wait for it."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await asyncio.wait_for(task, timeout=STOP_TIMEOUT_SECONDS)
        except asyncio.CancelledError:
            pass
        except TimeoutError:
            log.error("worker.stop_timeout", seconds=STOP_TIMEOUT_SECONDS)
        except Exception:
            log.exception("worker.stop_failed")
        finally:
            self._running = False
