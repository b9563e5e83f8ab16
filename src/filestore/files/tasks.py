"""The periodic `file_cleanup` job (`files:file_cleanup_tick`), and running it on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
import psycopg
import structlog
from sqlalchemy import func, select

from filestore.db import libpq_url
from filestore.files import cleanup
from filestore.jobs import service as jobs_service
from filestore.jobs.models import BackgroundJob, JobStatus, JobType
from filestore.jobs.resources import WorkerResources, resources_of

log = structlog.get_logger(__name__)

blueprint = procrastinate.Blueprint()

CLEANUP_LOCK_ID = 7_240_724
# Every 15 seconds: croniter's SIXTH field is seconds ("*/15 * * * * *" would tick every
# second, and only in minutes 0, 15, 30 and 45).
TICK_CRON = "* * * * * */15"


@asynccontextmanager
async def _sweep_lock(database_url: str, *, connect_timeout: float) -> AsyncIterator[bool]:
    """Whether this process may sweep now: a session-level advisory lock, held by a connection
    of its own until the sweep ends. (A transaction-level lock would be released at the sweep's
    first commit, letting the next tick start a second sweep beside it.) Closing the
    connection releases the lock, whatever happened meanwhile."""
    async with await psycopg.AsyncConnection.connect(
        libpq_url(database_url), autocommit=True, connect_timeout=max(1, round(connect_timeout))
    ) as conn:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (CLEANUP_LOCK_ID,))
        row = await cursor.fetchone()
        yield bool(row and row[0])


async def run_cleanup(resources: WorkerResources, *, force: bool = False) -> BackgroundJob | None:
    """Record and run one sweep if FILE_CLEANUP_INTERVAL_SECONDS have passed since the last
    (or always with `force`); one at a time across all workers, None when another one runs."""
    async with _sweep_lock(
        resources.database_url, connect_timeout=resources.settings.db_connect_timeout_seconds
    ) as locked:
        if not locked:
            return None
        return await _sweep_if_due(resources, force=force)


async def _sweep_if_due(resources: WorkerResources, *, force: bool) -> BackgroundJob | None:
    settings = resources.settings
    now = datetime.now(UTC)
    async with resources.sessionmaker() as session:
        last = (
            await session.execute(
                select(func.max(BackgroundJob.created_at)).where(
                    BackgroundJob.job_type == JobType.file_cleanup
                )
            )
        ).scalar()
        if (
            not force
            and last is not None
            and now - last < timedelta(seconds=settings.file_cleanup_interval_seconds)
        ):
            return None
        job = await jobs_service.create(
            session, job_type=JobType.file_cleanup, params={}, created_by=None
        )
        job.status = JobStatus.processing
        job.started_at = now
        await session.commit()
    report: cleanup.SweepReport | None = None
    message: str | None = None
    try:
        report = await cleanup.sweep(
            resources.sessionmaker,
            resources.storage,
            sorted(set(settings.buckets.values())),
            now=now,
            grace=timedelta(seconds=settings.orphan_grace_seconds),
            orphan_budget=settings.orphan_sweep_batch,
        )
    except Exception as exc:
        log.exception("cleanup.failed")
        message = f"Cleanup stopped: {type(exc).__name__}"
    else:
        if report.missing_buckets:
            message = f"Buckets missing, not swept: {', '.join(report.missing_buckets)}"
    async with resources.sessionmaker() as session:
        job_row = await session.get(BackgroundJob, job.id)
        assert job_row is not None
        job_row.status = JobStatus.failed if report is None else JobStatus.completed
        job_row.message = message
        job_row.result = report.to_json() if report is not None else {}
        job_row.finished_at = datetime.now(UTC)
        if report is not None:
            job_row.processed_rows = job_row.successful_rows = report.total
            job_row.failed_rows = report.errors
        await session.commit()
        return job_row


@blueprint.periodic(cron=TICK_CRON, periodic_id="file_cleanup_tick")
@blueprint.task(name="file_cleanup_tick", queueing_lock="file_cleanup_tick", pass_context=True)
async def file_cleanup_tick(context: Any, timestamp: int) -> None:
    await run_cleanup(resources_of(context))
