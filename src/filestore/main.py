"""The FastAPI application: lifespan wiring, routers, error handlers.

`uvicorn app.main:app` (the seed's command) and `filestore serve` both run `create_app()`.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from filestore import __version__
from filestore import worker as job_worker
from filestore.audit.router import router as audit_router
from filestore.auth.router import router as auth_router
from filestore.auth.router import users_router
from filestore.bootstrap import bootstrap_accounts
from filestore.console.router import STATIC_DIR as CONSOLE_STATIC_DIR
from filestore.console.router import router as console_router
from filestore.customers.router import router as customers_router
from filestore.db import (
    autocommit_engine,
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
)
from filestore.drain import DrainMiddleware
from filestore.embedded import database_url_for
from filestore.errors import install_error_handlers
from filestore.files.direct_router import router as direct_router
from filestore.files.download import WHOLE_BODY_MAX
from filestore.files.router import router as files_router
from filestore.files.tus.headers import TusResumableHeader
from filestore.files.tus.protocol import EXPOSED_HEADERS
from filestore.files.tus_router import router as tus_router
from filestore.forwarded import ForwardedHeadersMiddleware
from filestore.health import router as health_router
from filestore.imports.router import router as imports_router
from filestore.jobs import queue as job_queue
from filestore.jobs.resources import WorkerResources
from filestore.jobs.router import router as jobs_router
from filestore.memory import limit_arenas
from filestore.middleware import (
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    Utf8UrlMiddleware,
)
from filestore.migrate import upgrade
from filestore.models import load_all_models
from filestore.observability import RequestLogMiddleware, configure_logging
from filestore.openapi import install as install_openapi
from filestore.pagination import NEXT_CURSOR_HEADER
from filestore.server_errors import UnhandledErrorMiddleware
from filestore.settings import Settings, get_settings
from filestore.state import AppState
from filestore.stats.router import router as stats_router
from filestore.storage.cache import ObjectCache
from filestore.storage.store import ObjectStorage
from filestore.tickets.router import router as tickets_router

log = structlog.get_logger(__name__)


async def _ensure_buckets(storage: ObjectStorage) -> None:
    try:
        await asyncio.wait_for(storage.ensure_buckets(), timeout=30)
    except Exception as exc:
        # Start anyway: /health reports the store as down and requests get 503 until it is up.
        log.error("storage.buckets_unavailable", error=str(exc)[:300])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # `filestore serve` did it already; `uvicorn app.main:app` (the seed's command) did not.
    limit_arenas(settings.malloc_arena_max)
    load_all_models()
    database_url = await asyncio.to_thread(database_url_for, settings)
    if settings.auto_migrate:
        await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(settings, database_url)
    storage = ObjectStorage(settings)
    await _ensure_buckets(storage)
    wait = settings.db_statement_timeout_seconds
    with job_worker.queue_on(database_url, wait_seconds=wait) as queue:
        state = AppState(
            settings=settings,
            database_url=database_url,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            storage=storage,
            queue=queue,
            read_sessionmaker=create_read_sessionmaker(engine),
            read_engine=autocommit_engine(engine),
            object_cache=ObjectCache(
                max_bytes=settings.download_cache_bytes, max_object=WHOLE_BODY_MAX
            )
            if settings.download_cache_bytes
            else None,
        )
        await bootstrap_accounts(settings, state.sessionmaker)
        await queue.open_async()
        hash_pool = None
        if settings.runs_in_process_worker:
            hash_pool = job_queue.create_hash_pool()
            resources = WorkerResources(
                settings=settings,
                database_url=database_url,
                sessionmaker=state.sessionmaker,
                storage=storage,
                hash_pool=hash_pool,
            )
            state.worker = job_worker.start_in_process(
                queue, resources, concurrency=settings.worker_concurrency
            )
        app.state.filestore = state
        log.info(
            "filestore.started",
            embedded=settings.embedded_mode,
            in_process_worker=settings.runs_in_process_worker,
            storage=storage.kind,
            max_file_size=settings.max_file_size,
        )
        # Everything built so far (modules, the app, mappers, compiled statements) lives as
        # long as the process: out of the collector's sight, a full collection no longer walks
        # it again and again. Measured: -9..-15% CPU per request on `GET /files/{id}` and
        # `/auth/me` (bench/small_ab.py, docs/benchmarks.md, issue 12's fourth pass).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if state.worker is not None:
                await state.worker.stop()
            if hash_pool is not None:
                hash_pool.shutdown(wait=False, cancel_futures=True)
            await queue.close_async()
            await engine.dispose()
            if settings.embedded_mode:
                from filestore.embedded import stop_embedded_postgres

                await asyncio.to_thread(stop_embedded_postgres)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Filestore",
        version=__version__,
        description="File storage for the ISP platform: streaming uploads to S3/MinIO, "
        "metadata in PostgreSQL.",
        lifespan=lifespan,
        docs_url="/docs" if settings.filestore_api_docs else None,
        redoc_url="/redoc" if settings.filestore_api_docs else None,
        openapi_url="/openapi.json" if settings.filestore_api_docs else None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_json_body_size,
        exempt=frozenset({("POST", "/files/upload"), ("POST", "/files/tus")}),
        exempt_prefixes=frozenset({("PATCH", "/files/tus/")}),
    )
    app.add_middleware(Utf8UrlMiddleware)
    app.add_middleware(RequestLogMiddleware)
    # Added last, so outermost: no unexpected exception reaches Starlette's ServerErrorMiddleware.
    app.add_middleware(UnhandledErrorMiddleware)
    # While `filestore serve` drains after SIGTERM: requests in flight finish, new ones get 503.
    app.add_middleware(DrainMiddleware)
    app.add_middleware(TusResumableHeader)
    # Error answers and 404s carry the headers too.
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=[*EXPOSED_HEADERS, NEXT_CURSOR_HEADER],
            max_age=600,
        )
    # Outermost: the peer address and the URLs built from the Host header are the real ones.
    app.add_middleware(ForwardedHeadersMiddleware, trusted=settings.forwarded_allow_ips)
    # A request is matched against the routers in this order, each router's routes one by one
    # (5-18 us per router here), so the busiest come first: the files routes were matched
    # after eleven routers, ~100 us of every file request. Only a FULL match (path and method)
    # ends the search, so a route of another method never hides one further down. The jobs
    # router must come before the files router: `GET /files/jobs` is not `GET /files/{file_id}`.
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(jobs_router)
    app.include_router(files_router)
    app.include_router(imports_router)
    app.include_router(tus_router)
    app.include_router(direct_router)
    app.include_router(users_router)
    app.include_router(audit_router)
    app.include_router(customers_router)
    app.include_router(tickets_router)
    app.include_router(stats_router)
    app.include_router(console_router)
    app.mount("/console/static", StaticFiles(directory=CONSOLE_STATIC_DIR), name="console-static")
    return app
