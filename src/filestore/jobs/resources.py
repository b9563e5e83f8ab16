"""What job tasks need at run time, handed to the worker as procrastinate's additional context."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

CONTEXT_KEY = "filestore"


@dataclass
class WorkerResources:
    settings: Settings
    database_url: str
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: ObjectStorage
    hash_pool: Executor | None


def resources_of(context: Any) -> WorkerResources:
    """The resources of the worker running this job (see `filestore.worker`)."""
    resources: WorkerResources = context.additional_context[CONTEXT_KEY]
    return resources
