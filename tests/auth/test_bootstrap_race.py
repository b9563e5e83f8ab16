"""API processes started together on a fresh database all bootstrap the first admin: one wins,
none crashes (an orchestrator starts replicas at once)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from filestore.auth.models import Role, User
from filestore.bootstrap import bootstrap_accounts
from filestore.models import load_all_models
from tests.conftest import Postgres
from tests.fixtures.app import fast_settings, open_engine


async def test_concurrent_bootstraps_create_one_admin(postgres: Postgres, tmp_path: Path) -> None:
    url = postgres.migrated_database("filestore_bootstrap")
    settings = fast_settings(url, tmp_path)
    load_all_models()
    engines = [open_engine(url) for _ in range(4)]
    try:
        makers = [async_sessionmaker(engine, expire_on_commit=False) for engine in engines]
        await asyncio.gather(*(bootstrap_accounts(settings, maker) for maker in makers))
        async with makers[0]() as session:
            admins = await session.scalar(
                select(func.count()).select_from(User).where(User.role == Role.admin)
            )
        assert admins == 1
    finally:
        for engine in engines:
            await engine.dispose()
