"""`filestore worker`: a standalone process that runs queued jobs."""

from __future__ import annotations

import structlog

from filestore.db import create_engine, create_sessionmaker
from filestore.jobs import queue as job_queue
from filestore.jobs.resources import WorkerResources
from filestore.observability import configure_logging
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)


async def run_standalone_worker(settings: Settings, database_url: str, *, concurrency: int) -> None:
    configure_logging(settings.log_level)
    engine = create_engine(settings, database_url)
    hash_pool = job_queue.create_hash_pool()
    queue = job_queue.create_queue(database_url)
    resources = WorkerResources(
        settings=settings,
        database_url=database_url,
        sessionmaker=create_sessionmaker(engine),
        storage=ObjectStorage(settings),
        hash_pool=hash_pool,
    )
    log.info("worker.started", concurrency=concurrency)
    try:
        async with queue.open_async():
            await job_queue.run_worker(
                queue, resources, concurrency=concurrency, install_signal_handlers=True
            )
    finally:
        hash_pool.shutdown(wait=False, cancel_futures=True)
        await engine.dispose()
        log.info("worker.stopped")


async def run_cleanup_once(settings: Settings, database_url: str) -> dict[str, object] | None:
    """`filestore cleanup`: one sweep now, recorded as a `file_cleanup` job."""
    from filestore.files.tasks import run_cleanup

    engine = create_engine(settings, database_url)
    try:
        resources = WorkerResources(
            settings=settings,
            database_url=database_url,
            sessionmaker=create_sessionmaker(engine),
            storage=ObjectStorage(settings),
            hash_pool=None,
        )
        job = await run_cleanup(resources, force=True)
        return None if job is None else {"status": job.status.value, **job.result}
    finally:
        await engine.dispose()
