"""The process-wide resources created in `lifespan` and handed to every request."""

from __future__ import annotations

from dataclasses import dataclass

import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from filestore.jobs.supervisor import WorkerSupervisor
from filestore.settings import Settings
from filestore.storage.cache import ObjectCache
from filestore.storage.store import ObjectStorage


@dataclass
class AppState:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: ObjectStorage
    queue: procrastinate.App
    # The in-process worker, when this process runs one (embedded mode).
    worker: WorkerSupervisor | None = None
    # Sessions without a transaction (autocommit), for the hot read-only routes: no BEGIN and
    # COMMIT round trips. None: they use `sessionmaker` (the fast tier's savepoint sessions).
    read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
    # Small objects' bytes for downloads (DOWNLOAD_CACHE_BYTES); None: every download reads
    # the store.
    object_cache: ObjectCache | None = None

    @property
    def reader(self) -> async_sessionmaker[AsyncSession]:
        return self.read_sessionmaker or self.sessionmaker
