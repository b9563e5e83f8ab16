"""A scrape sees a complete set of database gauges, even while another scrape refreshes them.

Real PostgreSQL: the refresh awaits its queries, and `render()` (what `/metrics` answers) is
called at every point where the refresh waits, as a concurrent scrape would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore import gauges, metrics
from filestore.db import create_engine, create_sessionmaker
from filestore.models import load_all_models
from filestore.settings import Settings
from tests.conftest import Postgres

EXPECTED = (
    'filestore_jobs{job_type="csv_import",status="completed"} 2.0',
    'filestore_jobs{job_type="file_cleanup",status="failed"} 1.0',
    'filestore_storage_files{bucket="temp"} 3.0',
    'filestore_storage_bytes{bucket="temp"} 30.0',
    'filestore_csv_import_rows{outcome="successful"} 14.0',
)


@pytest.fixture
async def maker(postgres: Postgres) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    load_all_models()
    database_url = postgres.migrated_database("filestore_gauges")
    engine = create_engine(Settings(), database_url)
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        await session.execute(
            text(
                "INSERT INTO background_jobs (id, job_type, status, params, successful_rows) "
                "VALUES (gen_random_uuid(), 'csv_import', 'completed', '{}', 7), "
                "(gen_random_uuid(), 'csv_import', 'completed', '{}', 7), "
                "(gen_random_uuid(), 'file_cleanup', 'failed', '{}', 0)"
            )
        )
        await session.execute(
            text(
                "INSERT INTO file_uploads (filename, bucket, object_key, file_size, mime_type, "
                "file_type, md5, sha256, upload_status) "
                "SELECT 'f.txt', 'temp', 'k' || n, 10, 'text/plain', 'document', '', '', "
                "'completed' FROM generate_series(1, 3) AS n"
            )
        )
        await session.commit()
    yield sessions
    await engine.dispose()


async def refresh(maker: async_sessionmaker[AsyncSession]) -> None:
    async with maker() as session:
        await gauges.refresh(session)


class TestConcurrentScrapes:
    async def test_every_scrape_sees_every_series(
        self, maker: async_sessionmaker[AsyncSession]
    ) -> None:
        await refresh(maker)
        scrapes = 0
        for _ in range(3):
            task = asyncio.create_task(refresh(maker))
            while not task.done():
                page = metrics.render()[0].decode()
                missing = [line for line in EXPECTED if line not in page]
                assert not missing, f"a scrape during a refresh lacked {missing}"
                scrapes += 1
                await asyncio.sleep(0)
            await task
        assert scrapes > 3  # the refresh really was caught while it waited
