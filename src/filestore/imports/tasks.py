"""The queue tasks that run a customer import (`imports:run_customer_import`) and undo one
(`imports:run_import_undo`)."""

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
from filestore.imports.undo import ImportUndo
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


# Connection and storage hiccups: run again from the checkpoint.
RETRY = procrastinate.RetryStrategy(
    max_attempts=MAX_ATTEMPTS,
    exponential_wait=2,
    retry_exceptions={psycopg.OperationalError, OSError, TimeoutError, StorageUnavailable},
)


async def requeue(
    maker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, task: Any = None
) -> None:
    """Queue the job's task again (an import's by default; an undo's when given), under the
    import's lock."""
    task = task or run_customer_import
    lock_id = job_id
    if task is run_import_undo:
        async with maker() as session:
            job = await session.get(BackgroundJob, job_id)
            lock_id = uuid.UUID(str(job.params["undo_of"])) if job is not None else job_id
    queue_job_id = await task.configure(lock=f"import:{lock_id}").defer_async(job_id=str(job_id))
    async with maker() as session:
        job = await session.get(BackgroundJob, job_id)
        if job is not None:
            job.queue_job_id = queue_job_id
            await session.commit()
    log.info("import.requeued", job_id=str(job_id), queue_job_id=queue_job_id)


@blueprint.task(name="run_customer_import", pass_context=True, retry=RETRY)
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
    await _run_or_fail(context, runner, "import")


async def _run_or_fail(context: Any, runner: CustomerImport | ImportUndo, what: str) -> None:
    """Run; on an error that will not be retried (or the last attempt), fail the job with a
    message rather than leave it `processing`."""
    resources = resources_of(context)
    try:
        await runner.run()
    except asyncio.CancelledError:
        # The worker is stopping and WORKER_SHUTDOWN_SECONDS ran out: every batch written so
        # far is committed with its checkpoint; queue the rest (same lock, so it cannot start
        # before this run has ended) for whichever worker is left.
        task = run_import_undo if isinstance(runner, ImportUndo) else run_customer_import
        await asyncio.shield(requeue(resources.sessionmaker, runner.job_id, task))
        raise
    except Exception as exc:
        attempts = context.job.attempts + 1
        log.exception(f"{what}.error", job_id=str(runner.job_id), attempt=attempts)
        retryable = isinstance(
            exc, psycopg.OperationalError | OSError | TimeoutError | StorageUnavailable
        )
        if not retryable or attempts >= MAX_ATTEMPTS:
            await fail_job(
                resources.database_url,
                runner.job_id,
                f"The {what} stopped on an internal error ({type(exc).__name__})",
                attempt=runner.attempt,
            )
        raise


@blueprint.task(name="run_import_undo", pass_context=True, retry=RETRY)
async def run_import_undo(context: Any, job_id: str) -> None:
    resources = resources_of(context)
    runner = ImportUndo(database_url=resources.database_url, job_id=uuid.UUID(job_id))
    await _run_or_fail(context, runner, "undo")
