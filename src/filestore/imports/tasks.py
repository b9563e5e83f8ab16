"""The queue task that runs a customer import (`imports:run_customer_import`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import procrastinate
import psycopg
import structlog
from obstore.exceptions import NotFoundError

from filestore.auth import reset as reset_service
from filestore.files.models import FileUpload, UploadStatus
from filestore.imports.rows import ImportFileError
from filestore.imports.runner import CustomerImport, ImportSource, fail_job
from filestore.jobs.models import BackgroundJob, JobStatus
from filestore.jobs.resources import WorkerResources, resources_of
from filestore.storage.errors import StorageUnavailable
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)

blueprint = procrastinate.Blueprint()
MAX_ATTEMPTS = 5
FILE_GONE = "The CSV file of this import no longer exists (it was deleted)"


def object_source(storage: ObjectStorage, file: FileUpload) -> ImportSource:
    async def open_from(offset: int) -> AsyncIterator[bytes | memoryview]:
        if offset >= file.file_size:
            return
        try:
            stored = await storage.open(file.bucket, file.object_key, start=offset)
        except (FileNotFoundError, NotFoundError) as exc:
            # Deleted after the import started: a clear failure, not five retries of an
            # "internal error".
            raise ImportFileError(FILE_GONE) from exc
        async for chunk in stored.chunks:
            yield chunk

    return ImportSource(size=file.file_size, open=open_from)


@blueprint.task(
    name="run_customer_import",
    pass_context=True,
    # Connection and storage hiccups: run again from the checkpoint.
    retry=procrastinate.RetryStrategy(
        max_attempts=MAX_ATTEMPTS,
        exponential_wait=2,
        retry_exceptions={psycopg.OperationalError, OSError, TimeoutError, StorageUnavailable},
    ),
)
async def run_customer_import(context: Any, job_id: str) -> None:
    resources = resources_of(context)
    job_uuid = uuid.UUID(job_id)
    async with resources.sessionmaker() as session:
        job = await session.get(BackgroundJob, job_uuid)
        file_id = job.file_upload_id if job else None
        file = await session.get(FileUpload, file_id) if file_id else None
    if job is None:
        log.warning("import.job_missing", job_id=job_id)
        return
    if file is None or file.upload_status is not UploadStatus.completed:
        await fail_job(resources.database_url, job_uuid, FILE_GONE)
        return
    runner = CustomerImport(
        database_url=resources.database_url,
        job_id=job_uuid,
        source=object_source(resources.storage, file),
        hash_pool=resources.hash_pool,
    )
    try:
        await runner.run()
    except Exception as exc:
        attempts = context.job.attempts + 1
        log.exception("import.error", job_id=job_id, attempt=attempts)
        retryable = isinstance(
            exc, psycopg.OperationalError | OSError | TimeoutError | StorageUnavailable
        )
        if not retryable or attempts >= MAX_ATTEMPTS:
            await fail_job(
                resources.database_url,
                job_uuid,
                f"The import stopped on an internal error ({type(exc).__name__})",
            )
        raise
    rules = job.params.get("validation_rules") or {}
    if rules.get("send_invites") and not rules.get("dry_run"):
        await send_invites(resources, job_uuid)


async def send_invites(resources: WorkerResources, job_id: uuid.UUID) -> None:
    """After a completed import: a set-your-password e-mail to each customer it created without
    a password. Also runs when the job is run again after a crash, for the invites not sent."""
    async with resources.sessionmaker() as session:
        job = await session.get(BackgroundJob, job_id)
    if job is None or job.status is not JobStatus.completed:
        return
    try:
        await reset_service.send_import_invites(
            resources.sessionmaker, job_id=job_id, settings=resources.settings
        )
    except Exception:
        # The import itself succeeded; its result says how many invites went out.
        log.exception("import.invites_error", job_id=str(job_id))
