"""Jobs: create (deferring the queue job in the same transaction), fetch, list, cancel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.errors import Conflict, NotFound
from filestore.jobs.models import (
    FINISHED_STATUSES,
    BackgroundJob,
    ImportRowError,
    JobStatus,
    JobType,
)

log = structlog.get_logger(__name__)


async def raw_connection(session: AsyncSession) -> Any:
    """The session's psycopg connection, for procrastinate to defer inside our transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def create(
    session: AsyncSession,
    *,
    job_type: JobType,
    params: dict[str, Any],
    created_by: int | None,
    file_upload_id: int | None = None,
) -> BackgroundJob:
    job = BackgroundJob(
        id=uuid.uuid4(),
        job_type=job_type,
        status=JobStatus.pending,
        params=params,
        created_by=created_by,
        file_upload_id=file_upload_id,
        processed_rows=0,
        successful_rows=0,
        failed_rows=0,
        skipped_rows=0,
        warning_rows=0,
        error_log=[],
        warnings=[],
        result={},
        checkpoint_offset=0,
        checkpoint_line=0,
        cancel_requested=False,
        attempts=0,
    )
    session.add(job)
    await session.flush()
    await session.refresh(job)
    return job


async def get(session: AsyncSession, *, job_id: uuid.UUID) -> BackgroundJob:
    """A job by id (routes that call this are for staff and admins only)."""
    job = await session.get(BackgroundJob, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} not found", code="job_not_found")
    return job


async def list_jobs(
    session: AsyncSession,
    *,
    status: JobStatus | None,
    job_type: JobType | None,
    limit: int,
    offset: int,
) -> list[BackgroundJob]:
    stmt = select(BackgroundJob).order_by(BackgroundJob.created_at.desc(), BackgroundJob.id)
    if status is not None:
        stmt = stmt.where(BackgroundJob.status == status)
    if job_type is not None:
        stmt = stmt.where(BackgroundJob.job_type == job_type)
    return list((await session.execute(stmt.limit(limit).offset(offset))).scalars())


async def request_cancel(session: AsyncSession, *, job: BackgroundJob) -> BackgroundJob:
    """A pending job is cancelled at once; a running one stops at its next batch."""
    if job.status in FINISHED_STATUSES:
        raise Conflict(f"Job is already {job.status.value}", code="job_finished")
    now = datetime.now(UTC)
    stmt = (
        update(BackgroundJob)
        .where(BackgroundJob.id == job.id)
        .values(cancel_requested=True)
        .returning(BackgroundJob.status)
    )
    await session.execute(stmt)
    if job.status is JobStatus.pending:
        await session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == job.id, BackgroundJob.status == JobStatus.pending)
            .values(
                status=JobStatus.cancelled, finished_at=now, message="Cancelled before it started"
            )
        )
    await session.flush()
    await session.refresh(job)
    log.info("job.cancel_requested", job_id=str(job.id))
    return job


async def row_errors(session: AsyncSession, *, job_id: uuid.UUID) -> AsyncIterator[ImportRowError]:
    """Every recorded row error of a job, in file order, streamed from the database."""
    stmt = (
        select(ImportRowError)
        .where(ImportRowError.job_id == job_id)
        .order_by(ImportRowError.row, ImportRowError.id)
        .execution_options(yield_per=1000)
    )
    result = await session.stream_scalars(stmt)
    async for error in result:
        yield error
