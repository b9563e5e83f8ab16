"""A job while a worker runs it: claim, save its plan, checkpoint, finish or fail.

The one place that moves a `background_jobs` row through its run (`jobs/service.py` creates,
lists and cancels rows through the ORM). It works on the runner's own psycopg connection, so a
batch of work and its checkpoint commit in one transaction.

A claim bumps `attempts`, and that number fences every later write: when a stalled run is
requeued and claimed again, the old runner's next checkpoint, plan or finish matches no row and
raises `JobSuperseded`, so it can never write after the new one took over. A cancel request is
seen at the next checkpoint, which raises `JobCancelled` and rolls the batch back.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from filestore.db import libpq_url
from filestore.jobs.models import ERROR_LOG_CAP, JobStatus

RUNNABLE = [JobStatus.pending.value, JobStatus.processing.value]

_CLAIM = """
UPDATE background_jobs
SET status = (CASE WHEN cancel_requested THEN %(cancelled)s ELSE %(processing)s END)::job_status,
    started_at = coalesce(started_at, now()),
    finished_at = CASE WHEN cancel_requested THEN now() END,
    attempts = attempts + 1, heartbeat_at = now()
WHERE id = %(id)s AND status = ANY(%(runnable)s::job_status[])
RETURNING status::text AS status, attempts, params, total_rows, checkpoint_offset,
          checkpoint_line, processed_rows, successful_rows, failed_rows, skipped_rows,
          jsonb_array_length(error_log) AS error_log_len
"""

# Every write of a claimed run ends with this condition: still ours, still running.
_FENCE = "id = %(id)s AND attempts = %(attempt)s AND status = %(processing)s::job_status"

_SAVE_PLAN = f"""
UPDATE background_jobs
SET total_rows = %(total)s, params = params || %(params)s::jsonb, warnings = %(warnings)s::jsonb,
    checkpoint_offset = %(offset)s, checkpoint_line = %(line)s,
    result = result || %(result)s::jsonb, heartbeat_at = now()
WHERE {_FENCE}
RETURNING cancel_requested
"""

_CHECKPOINT = f"""
UPDATE background_jobs SET
    processed_rows = processed_rows + %(processed)s,
    successful_rows = successful_rows + %(successful)s,
    updated_rows = updated_rows + %(updated)s,
    failed_rows = failed_rows + %(failed)s,
    skipped_rows = skipped_rows + %(skipped)s,
    warning_rows = warning_rows + %(warned)s,
    error_log = error_log || %(errors)s::jsonb,
    result = result || %(result)s::jsonb,
    checkpoint_offset = %(offset)s,
    checkpoint_line = %(line)s,
    heartbeat_at = now()
WHERE {_FENCE}
RETURNING cancel_requested, jsonb_array_length(error_log)
"""

_FINISH = f"""
UPDATE background_jobs
SET status = %(status)s::job_status, finished_at = now(), message = coalesce(%(message)s, message),
    result = result || %(result)s::jsonb, heartbeat_at = now()
WHERE {_FENCE}
"""

_FAIL_UNCLAIMED = """
UPDATE background_jobs
SET status = %(status)s::job_status, finished_at = now(), message = %(message)s
WHERE id = %(id)s AND status = ANY(%(runnable)s::job_status[])
  AND (%(attempt)s::int IS NULL OR attempts = %(attempt)s::int)
"""


class JobSuperseded(Exception):
    """Another runner claimed this job (or it finished): this one must stop without writing."""


class JobCancelled(Exception):
    """Someone asked to cancel the job: the run stops at this checkpoint."""


RATE_WINDOW_SECONDS = 10.0


@dataclass
class JobProgress:
    """The job's counters as committed; the CLI's progress bar reads these. `rows_per_second`
    is this run's speed over its last few seconds, `eta_seconds` the rest at that speed."""

    total_rows: int | None = None
    processed_rows: int = 0
    successful_rows: int = 0
    failed_rows: int = 0
    skipped_rows: int = 0
    rows_per_second: float | None = None
    eta_seconds: float | None = None


class RateMeter:
    """Rows per second over a sliding window of checkpoints (a run's first batch, slowed by
    its start, soon leaves the window)."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self.points: deque[tuple[float, int]] = deque()

    def add(self, processed: int, now: float | None = None) -> float | None:
        """Record the count `processed` at `now`; the rate, once two points exist."""
        now = time.monotonic() if now is None else now
        self.points.append((now, processed))
        while len(self.points) > 2 and now - self.points[1][0] >= self.window:
            self.points.popleft()
        (t0, n0), (t1, n1) = self.points[0], self.points[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None

    @staticmethod
    def eta(rate: float | None, total: int | None, processed: int) -> float | None:
        if not rate or total is None:
            return None
        return max(0.0, (total - processed) / rate)


@dataclass(frozen=True)
class Step:
    """What one batch did, and where the next one starts."""

    offset: int
    line: int
    processed: int = 0
    successful: int = 0
    updated: int = 0
    failed: int = 0
    skipped: int = 0
    warned: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


class RunningJob:
    """A job this runner claimed; every write is fenced by the claim's attempt number."""

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID, row: dict[str, Any]
    ) -> None:
        self.conn = conn
        self.id = job_id
        self.attempt = int(row["attempts"])
        self.params: dict[str, Any] = row["params"]
        self.offset = int(row["checkpoint_offset"])
        self.line = int(row["checkpoint_line"])
        self.error_log_len = int(row["error_log_len"])
        self.progress = JobProgress(
            total_rows=row["total_rows"],
            processed_rows=row["processed_rows"],
            successful_rows=row["successful_rows"],
            failed_rows=row["failed_rows"],
            skipped_rows=row["skipped_rows"],
        )
        self.meter = RateMeter()
        self.meter.add(self.progress.processed_rows)

    @classmethod
    async def claim(
        cls, conn: psycopg.AsyncConnection[Any], job_id: uuid.UUID
    ) -> RunningJob | None:
        """Start (or resume) the job; None when it is not runnable (finished or cancelled)."""
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(
                _CLAIM,
                {
                    "id": job_id,
                    "runnable": RUNNABLE,
                    "processing": JobStatus.processing.value,
                    "cancelled": JobStatus.cancelled.value,
                },
            )
            row = await cursor.fetchone()
        if row is None or row["status"] != JobStatus.processing.value:
            return None
        return cls(conn, job_id, row)

    @property
    def has_plan(self) -> bool:
        return self.progress.total_rows is not None

    @property
    def error_log_room(self) -> int:
        """How many more row errors `error_log` keeps (all of them go to `errors.csv`)."""
        return max(0, ERROR_LOG_CAP - self.error_log_len)

    def _fence(self, **values: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "attempt": self.attempt,
            "processing": JobStatus.processing.value,
            **values,
        }

    async def save_plan(
        self,
        *,
        total_rows: int,
        params: dict[str, Any],
        warnings: list[str],
        offset: int,
        line: int,
        result: dict[str, Any],
    ) -> None:
        """What a first pass found (row count, column plan, warnings), and where work starts."""
        async with self.conn.transaction():
            cursor = await self.conn.execute(
                _SAVE_PLAN,
                self._fence(
                    total=total_rows,
                    params=json.dumps(params),
                    warnings=json.dumps(warnings),
                    offset=offset,
                    line=line,
                    result=json.dumps(result),
                ),
            )
            self._check(await cursor.fetchone())
        self.offset, self.line, self.progress.total_rows = offset, line, total_rows

    async def checkpoint(self, step: Step) -> None:
        """Record a batch's counts and the next offset. Call it as the last statement inside
        the transaction that wrote the batch: raising rolls the batch back. The run's speed
        and the time left go into the job's `result` with it."""
        processed = self.progress.processed_rows + step.processed
        rate = self.meter.add(processed)
        eta = RateMeter.eta(rate, self.progress.total_rows, processed)
        speed = {
            "rows_per_second": None if rate is None else round(rate, 1),
            "eta_seconds": None if eta is None else round(eta, 1),
        }
        cursor = await self.conn.execute(
            _CHECKPOINT,
            self._fence(
                processed=step.processed,
                successful=step.successful,
                updated=step.updated,
                failed=step.failed,
                skipped=step.skipped,
                warned=step.warned,
                errors=json.dumps(step.errors[: self.error_log_room]),
                result=json.dumps({**step.result, **speed}),
                offset=step.offset,
                line=step.line,
            ),
        )
        row = await cursor.fetchone()
        self._check(row)
        assert row is not None
        self.error_log_len = int(row[1])
        self.offset, self.line = step.offset, step.line
        p = self.progress
        p.processed_rows += step.processed
        p.successful_rows += step.successful
        p.failed_rows += step.failed
        p.skipped_rows += step.skipped
        p.rows_per_second, p.eta_seconds = speed["rows_per_second"], speed["eta_seconds"]

    async def ensure_current(self) -> None:
        """Raise unless the job is still ours and not asked to stop (between units of work
        that have no checkpoint of their own, such as a batch of e-mails)."""
        async with self.conn.transaction():
            cursor = await self.conn.execute(
                f"UPDATE background_jobs SET heartbeat_at = now() WHERE {_FENCE} "
                "RETURNING cancel_requested",
                self._fence(),
            )
            self._check(await cursor.fetchone())

    async def finish(
        self,
        status: JobStatus,
        *,
        message: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """End the run as completed, failed or cancelled; raises when it was superseded."""
        async with self.conn.transaction():
            cursor = await self.conn.execute(
                _FINISH,
                self._fence(status=status.value, message=message, result=json.dumps(result or {})),
            )
            if cursor.rowcount != 1:
                raise JobSuperseded()

    async def fail(self, message: str) -> None:
        await self.finish(JobStatus.failed, message=message)

    @staticmethod
    def _check(row: Any) -> None:
        if row is None:
            raise JobSuperseded()
        if row[0]:
            raise JobCancelled()


async def fail_job(
    database_url: str,
    job_id: uuid.UUID,
    message: str,
    *,
    status: JobStatus = JobStatus.failed,
    attempt: int | None = None,
) -> None:
    """Mark a job failed (or cancelled) after an unexpected error or an interruption, so it
    is never left `processing`. With `attempt`, only if no later run claimed it since."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        await conn.execute(
            _FAIL_UNCLAIMED,
            {
                "id": job_id,
                "status": status.value,
                "message": message,
                "runnable": RUNNABLE,
                "attempt": attempt,
            },
        )
        await conn.commit()
