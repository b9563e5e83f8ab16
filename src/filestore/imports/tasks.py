"""The queue task that runs a customer import (`imports:run_customer_import`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import procrastinate
import psycopg
import structlog
from obstore.exceptions import NotFoundError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore.files.models import FileUpload, UploadStatus
from filestore.imports import invites
from filestore.imports.records import ImportSource
from filestore.imports.rows import ImportFileError
from filestore.imports.runner import CustomerImport
from filestore.jobs.models import BackgroundJob
from filestore.jobs.resources import resources_of
from filestore.jobs.running import fail_job
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

    async def read_range(start: int, end: int) -> bytes:
        # A workbook is read by seeking: one ranged GET per block (`ranged.RangeFile`).
        try:
            stored = await storage.open(file.bucket, file.object_key, start=start, end=end)
        except (FileNotFoundError, NotFoundError) as exc:
            raise ImportFileError(FILE_GONE) from exc
        return b"".join([bytes(chunk) async for chunk in stored.chunks])

    return ImportSource(size=file.file_size, open=open_from, read_range=read_range)


async def requeue(maker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> None:
    queue_job_id = await run_customer_import.configure(lock=f"import:{job_id}").defer_async(
        job_id=str(job_id)
    )
    async with maker() as session:
        job = await session.get(BackgroundJob, job_id)
        if job is not None:
            job.queue_job_id = queue_job_id
            await session.commit()
    log.info("import.requeued", job_id=str(job_id), queue_job_id=queue_job_id)


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
        mailer=invites.Mailer(resources.sessionmaker, resources.settings),
    )
    try:
        await runner.run()
    except asyncio.CancelledError:
        # The worker is stopping and WORKER_SHUTDOWN_SECONDS ran out: every batch written so
        # far is committed with its checkpoint; queue the rest (same lock, so it cannot start
        # before this run has ended) for whichever worker is left.
        await asyncio.shield(requeue(resources.sessionmaker, job_uuid))
        raise
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
                attempt=runner.attempt,
            )
        raise
