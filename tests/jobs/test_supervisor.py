"""The in-process worker's supervisor: a dead worker is logged, reported and restarted.

Unit tests of the restart logic with a stand-in for the worker (a coroutine that fails or
returns); the real worker dying with its database is in `tests/ops/test_worker_crash.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from structlog.testing import capture_logs

from filestore.jobs.supervisor import Backoff, WorkerSupervisor

FAST = Backoff(first=0.05, maximum=0.2, stable_after=10)


async def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


class TestBackoff:
    def test_doubles_after_quick_crashes_up_to_the_cap(self) -> None:
        delays = []
        delay = None
        for _ in range(5):
            delay = FAST.next(delay, ran_for=0.1)
            delays.append(delay)
        assert delays == [0.05, 0.1, 0.2, 0.2, 0.2]

    def test_starts_over_after_a_long_run(self) -> None:
        assert FAST.next(0.2, ran_for=60) == 0.05


class TestSupervisor:
    async def test_a_crash_is_logged_reported_and_followed_by_a_restart(self) -> None:
        starts = 0
        release = asyncio.Event()

        async def worker() -> None:
            nonlocal starts
            starts += 1
            if starts == 1:
                raise RuntimeError("lost the database")
            await release.wait()  # the second run keeps going

        supervisor = WorkerSupervisor(worker, backoff=Backoff(first=0.3))
        with capture_logs() as logs:
            supervisor.start()
            await wait_until(lambda: supervisor.crashes == 1)
            # Waiting for its restart: down, and /health says so.
            assert not supervisor.alive
            assert supervisor.status() == {
                "status": "down",
                "crashes": 1,
                "last_error": "RuntimeError: lost the database",
            }
            await wait_until(lambda: starts == 2)
            assert supervisor.alive
            assert supervisor.status()["status"] == "running"
            await supervisor.stop()
        crashed = [e for e in logs if e["event"] == "worker.crashed"]
        assert len(crashed) == 1
        assert crashed[0]["exc_info"] is True  # logged with its traceback
        assert crashed[0]["log_level"] == "error"
        assert not supervisor.alive

    async def test_a_worker_that_returns_by_itself_is_restarted_too(self) -> None:
        starts = 0

        async def worker() -> None:
            nonlocal starts
            starts += 1
            if starts < 3:
                return  # procrastinate stops itself when a side task fails
            await asyncio.Event().wait()

        supervisor = WorkerSupervisor(worker, backoff=FAST)
        with capture_logs():
            supervisor.start()
            await wait_until(lambda: starts == 3)
            assert supervisor.crashes == 2
            assert supervisor.last_error == "WorkerStopped: the job worker stopped by itself"
            await supervisor.stop()

    async def test_stop_during_a_run_is_quiet(self) -> None:
        async def worker() -> None:
            await asyncio.Event().wait()

        supervisor = WorkerSupervisor(worker, backoff=FAST)
        with capture_logs() as logs:
            supervisor.start()
            await asyncio.sleep(0.05)
            await supervisor.stop()
        assert supervisor.crashes == 0
        assert not [e for e in logs if e["log_level"] in {"error", "critical"}]

    async def test_restarts_keep_coming_while_the_worker_keeps_dying(self) -> None:
        async def worker() -> None:
            raise ConnectionError("still down")

        supervisor = WorkerSupervisor(worker, backoff=FAST)
        with capture_logs():
            supervisor.start()
            await wait_until(lambda: supervisor.crashes >= 3)
            await supervisor.stop()
        assert not supervisor.alive
