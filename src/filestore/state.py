"""The process-wide resources created in `lifespan` and handed to every request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from filestore.settings import Settings
from filestore.storage.store import ObjectStorage


@dataclass
class AppState:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: ObjectStorage
    queue: procrastinate.App
    worker_task: asyncio.Task[None] | None = None
