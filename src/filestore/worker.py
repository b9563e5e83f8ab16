"""The job worker: the one procrastinate App of this process, assembled from every domain's
blueprint, run inside the API (embedded mode) or as `filestore worker`; and `filestore cleanup`.

This module sits above the domains so that `jobs/` (the queue plumbing) never imports them.
procrastinate's `add_tasks_from` moves a blueprint's tasks into the App it is added to (it
renames them and points them at that App), so a process has exactly one App, built on first
use; each lifespan or command points it at its database with `queue_on(database_url)`.
Deferring goes through the task objects (`run_customer_import.configure(...)`), which then
use this App.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

import procrastinate
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from filestore.db import create_engine, create_sessionmaker
from filestore.files import tasks as files_tasks
from filestore.imports import tasks as imports_tasks
from filestore.jobs import queue as job_queue
from filestore.jobs import tasks as jobs_tasks
from filestore.jobs.resources import WorkerResources
from filestore.jobs.supervisor import WorkerSupervisor
from filestore.models import load_all_models
from filestore.observability import configure_logging
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)

BLUEPRINTS: dict[str, procrastinate.Blueprint] = {
    "jobs": jobs_tasks.blueprint,
    "imports": imports_tasks.blueprint,
    "files": files_tasks.blueprint,
}

_app: procrastinate.App | None = None


def _the_app() -> procrastinate.App:
    global _app
    if _app is None:
        # Never opened: `queue_on` swaps in a connector to the real database first.
        app = procrastinate.App(connector=procrastinate.PsycopgConnector())
        for namespace, blueprint in BLUEPRINTS.items():
            app.add_tasks_from(blueprint, namespace=namespace)
        _app = app
    return _app


@contextmanager
def queue_on(
    database_url: str, *, wait_seconds: float = job_queue.POOL_WAIT_SECONDS
) -> Iterator[procrastinate.App]:
    """The process's App, connected to `database_url` for the duration of the block (open it
    with `open_async()` inside); a connection is waited for at most `wait_seconds`."""
    connector = job_queue.connector(database_url, wait_seconds=wait_seconds)
    with _the_app().replace_connector(connector) as app:
        yield app


def start_in_process(
    queue: procrastinate.App, resources: WorkerResources, *, concurrency: int
) -> WorkerSupervisor:
    """Run a worker inside the API process, restarted with backoff if it dies."""
    supervisor = WorkerSupervisor(
        lambda: job_queue.run_worker(queue, resources, concurrency=concurrency)
    )
    supervisor.start()
    return supervisor


def _resources(
    settings: Settings, database_url: str, engine: AsyncEngine, hash_pool: Executor | None
) -> WorkerResources:
    return WorkerResources(
        settings=settings,
        database_url=database_url,
        sessionmaker=create_sessionmaker(engine),
        storage=ObjectStorage(settings),
        hash_pool=hash_pool,
    )


async def run_standalone_worker(settings: Settings, database_url: str, *, concurrency: int) -> None:
    """`filestore worker`: run jobs until SIGINT/SIGTERM."""
    configure_logging(settings.log_level)
    load_all_models()
    engine = create_engine(settings, database_url)
    hash_pool = job_queue.create_hash_pool()
    resources = _resources(settings, database_url, engine, hash_pool)
    log.info("worker.started", concurrency=concurrency)
    try:
        with queue_on(database_url, wait_seconds=settings.db_statement_timeout_seconds) as queue:
            async with queue.open_async():
                await job_queue.run_worker(
                    queue, resources, concurrency=concurrency, install_signal_handlers=True
                )
    finally:
        hash_pool.shutdown(wait=False, cancel_futures=True)
        await engine.dispose()
        log.info("worker.stopped")


async def run_cleanup_once(settings: Settings, database_url: str) -> dict[str, object] | None:
    """`filestore cleanup`: one sweep now, recorded as a `file_cleanup` job; None when another
    sweep is running."""
    load_all_models()
    engine = create_engine(settings, database_url)
    try:
        resources = _resources(settings, database_url, engine, None)
        job = await files_tasks.run_cleanup(resources, force=True)
        return None if job is None else {"status": job.status.value, **job.result}
    finally:
        await engine.dispose()
