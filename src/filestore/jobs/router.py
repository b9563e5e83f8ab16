"""`/files/jobs`: list, inspect and cancel background jobs; download an import's failed rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from filestore.deps import SessionDep, StaffUser, StateDep
from filestore.errors import ALWAYS, error_responses
from filestore.jobs import service as jobs_service
from filestore.jobs.errors_csv import stream_csv
from filestore.jobs.models import BackgroundJob, JobStatus, JobType
from filestore.jobs.schemas import JobOut
from filestore.schemas import PageOffset

router = APIRouter(
    prefix="/files/jobs", tags=["jobs"], responses=error_responses(401, 403, 422, *ALWAYS)
)


async def staff_job(job_id: uuid.UUID, session: SessionDep, _: StaffUser) -> BackgroundJob:
    """The job, for staff and admins; 404 when it does not exist."""
    return await jobs_service.get(session, job_id=job_id)


Job = Annotated[BackgroundJob, Depends(staff_job)]


@router.get("", response_model=list[JobOut])
async def list_jobs(
    session: SessionDep,
    _: StaffUser,
    status: JobStatus | None = None,
    job_type: JobType | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    offset: Annotated[PageOffset, Query()] = 0,
) -> Any:
    """Jobs, newest first, filtered by status and type (admin, staff)."""
    return await jobs_service.list_jobs(
        session, status=status, job_type=job_type, limit=limit, offset=offset
    )


@router.get("/{job_id}", response_model=JobOut, responses=error_responses(404))
async def get_job(job: Job) -> Any:
    """A job with its progress counters and the first errors."""
    return job


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses=error_responses(404, (409, "Already finished")),
)
async def cancel_job(job: Job, session: SessionDep) -> Any:
    """Cancel a job: a pending one at once, a running import at its next batch."""
    return await jobs_service.request_cancel(session, job=job)


@router.get(
    "/{job_id}/errors.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "Every failed row"},
        **error_responses(404),
    },
)
async def job_errors_csv(job: Job, state: StateDep) -> StreamingResponse:
    """Every failed row of an import with its error, spreadsheet-safe."""

    async def rows() -> AsyncIterator[tuple[object, ...]]:
        async with state.sessionmaker() as session:
            async for error in jobs_service.row_errors(session, job_id=job.id):
                yield (error.row, error.column, error.value, error.error)

    return StreamingResponse(
        stream_csv(rows()),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="import-{job.id}-errors.csv"',
            "X-Content-Type-Options": "nosniff",
        },
    )
