"""The cleanup sweep makes progress past rows it cannot clean, and runs once at a time.

Real PostgreSQL and the real local object store. The rows that cannot be cleaned belong to a
bucket whose directory is a regular file, so the store refuses every delete in it (as a store
answering AccessDenied would).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from filestore.db import create_engine, create_sessionmaker
from filestore.files import cleanup
from filestore.files import tasks as files_tasks
from filestore.jobs.models import JobStatus
from filestore.jobs.resources import WorkerResources
from filestore.models import load_all_models
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage
from tests.conftest import Postgres

REFUSED_BUCKET = "refused"
INSERT_FILE = (
    "INSERT INTO file_uploads (filename, bucket, object_key, file_size, mime_type, file_type, "
    "md5, sha256, upload_status, created_at, expires_at) "
    "SELECT 'f.pdf', :bucket, :prefix || n, 1, 'application/pdf', 'document', '', '', "
    "CAST(:status AS upload_status), now() - interval '2 hours', :expires_at "
    "FROM generate_series(1, :count) AS n RETURNING id"
)


@dataclass
class Env:
    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    storage: ObjectStorage
    resources: WorkerResources

    async def add_files(
        self,
        count: int,
        *,
        bucket: str,
        prefix: str,
        expires_at: datetime | None,
        status: str = "completed",
    ) -> list[int]:
        async with self.maker() as session:
            result = await session.execute(
                text(INSERT_FILE),
                {
                    "bucket": bucket,
                    "prefix": prefix,
                    "status": status,
                    "expires_at": expires_at,
                    "count": count,
                },
            )
            ids = list(result.scalars())
            await session.commit()
        return ids

    async def statuses(self, ids: list[int]) -> set[str]:
        async with self.maker() as session:
            result = await session.execute(
                text("SELECT DISTINCT upload_status::text FROM file_uploads WHERE id = ANY(:ids)"),
                {"ids": ids},
            )
            return set(result.scalars())


@pytest.fixture
async def env(postgres: Postgres, tmp_path: Path) -> AsyncIterator[Env]:
    load_all_models()
    database_url = postgres.migrated_database("filestore_cleanup")
    settings = Settings(filestore_data_dir=tmp_path, orphan_grace_seconds=60)
    storage = ObjectStorage(settings)
    await storage.ensure_buckets()
    (settings.objects_dir / REFUSED_BUCKET).write_text("not a directory")
    engine = create_engine(settings, database_url)
    maker = create_sessionmaker(engine)
    resources = WorkerResources(
        settings=settings,
        database_url=database_url,
        sessionmaker=maker,
        storage=storage,
        hash_pool=None,
    )
    yield Env(engine, maker, storage, resources)
    await engine.dispose()


async def one_chunk() -> AsyncIterator[memoryview]:
    yield memoryview(b"x")


class TestExpiry:
    async def test_rows_that_keep_failing_do_not_hold_up_the_rest(self, env: Env) -> None:
        now = datetime.now(UTC)
        # A full batch of expired rows the store refuses to delete, expired first...
        refused = await env.add_files(
            cleanup.EXPIRY_BATCH,
            bucket=REFUSED_BUCKET,
            prefix="customers/1/refused-",
            expires_at=now - timedelta(hours=2),
        )
        # ...and three that expired later and can go.
        deletable = await env.add_files(
            3, bucket="temp", prefix="customers/1/ok-", expires_at=now - timedelta(hours=1)
        )
        for n in range(1, 4):
            await env.storage.put_stream(
                "temp", f"customers/1/ok-{n}", one_chunk(), content_type="text/plain"
            )

        report = await asyncio.wait_for(
            cleanup.sweep(env.maker, env.storage, ["temp"], now=now, grace=timedelta(seconds=60)),
            timeout=60,
        )

        assert report.expired_files == 3
        assert report.errors == cleanup.EXPIRY_BATCH
        assert await env.statuses(deletable) == {"expired"}
        assert await env.statuses(refused) == {"completed"}
        for n in range(1, 4):
            assert not await env.storage.exists("temp", f"customers/1/ok-{n}")


class TestStuckUploads:
    async def test_form_uploads_a_crash_left_behind_go_with_their_bytes(self, env: Env) -> None:
        uploading = await env.add_files(
            1, bucket="temp", prefix="users/1/up-", expires_at=None, status="uploading"
        )
        verifying = await env.add_files(
            1, bucket="temp", prefix="users/1/ver-", expires_at=None, status="verifying"
        )
        await env.storage.put_stream(
            "temp", "users/1/ver-1", one_chunk(), content_type="text/plain"
        )
        later = datetime.now(UTC) + timedelta(hours=2)  # the object too is past the grace

        report = await asyncio.wait_for(
            cleanup.sweep(env.maker, env.storage, ["temp"], now=later, grace=timedelta(seconds=60)),
            timeout=60,
        )

        assert report.stuck_rows == 2
        assert await env.statuses(uploading + verifying) == set()
        assert not await env.storage.exists("temp", "users/1/ver-1")


class TestOneSweepAtATime:
    async def test_a_second_sweep_does_not_start_while_one_runs(self, env: Env) -> None:
        # A row stuck in `uploading` that another transaction holds: the first sweep waits on
        # it in its third step, long after it committed its job row.
        [stuck] = await env.add_files(
            1, bucket="temp", prefix="users/1/stuck-", expires_at=None, status="uploading"
        )
        async with env.engine.connect() as blocker:
            await blocker.execute(
                text("SELECT id FROM file_uploads WHERE id = :id FOR UPDATE"), {"id": stuck}
            )
            first = asyncio.create_task(files_tasks.run_cleanup(env.resources, force=True))
            await wait_for_a_lock_wait(env.engine)

            second = await asyncio.wait_for(
                files_tasks.run_cleanup(env.resources, force=True), timeout=10
            )
            assert second is None, "a second sweep ran while the first was running"
            await blocker.rollback()

        job = await asyncio.wait_for(first, timeout=30)
        assert job is not None
        assert job.status is JobStatus.completed
        assert job.result["stuck_rows"] == 1
        async with env.maker() as session:
            sweeps = await session.execute(
                text("SELECT count(*) FROM background_jobs WHERE job_type = 'file_cleanup'")
            )
            assert sweeps.scalar() == 1
        # Once it is over, the next sweep runs.
        again = await files_tasks.run_cleanup(env.resources, force=True)
        assert again is not None
        assert again.status is JobStatus.completed


async def wait_for_a_lock_wait(engine: AsyncEngine) -> None:
    """Until some session of this database waits for a lock (the first sweep, on the row).
    A new connection per look: pg_stat_activity is a snapshot within a transaction."""
    for _ in range(200):
        async with engine.connect() as conn:
            waiting = await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            if waiting.scalar():
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the first sweep never reached the locked row")


class TestOrphansABoundedSliceAtATime:
    async def test_each_sweep_checks_its_budget_and_resumes_after_it(self, env: Env) -> None:
        # Seven objects: two still owned by a row, five orphans (no row).
        keys = [f"customers/9/obj-{n}" for n in range(7)]
        for key in keys:
            await env.storage.put_stream("temp", key, one_chunk(), content_type="text/plain")
        await env.add_files(
            2, bucket="temp", prefix="customers/9/obj-", expires_at=None
        )  # owns obj-1 and obj-2
        later = datetime.now(UTC) + timedelta(hours=1)  # every object is past the grace period

        remaining: list[list[str]] = []
        for _ in range(3):
            report = cleanup.SweepReport()
            await cleanup.remove_orphan_objects(
                env.maker, env.storage, ["temp"], older_than=later, report=report, budget=3
            )
            remaining.append([key for key in keys if await env.storage.exists("temp", key)])
            assert report.errors == 0
        # Sweep 1 saw obj-0..2 (obj-0 an orphan), sweep 2 obj-3..5, sweep 3 obj-6 and the end.
        assert remaining[0] == keys[1:]
        assert remaining[1] == [keys[1], keys[2], keys[6]]
        assert remaining[2] == [keys[1], keys[2]]
        async with env.maker() as session:
            cursor = await session.execute(
                text("SELECT after_key FROM orphan_sweep_cursors WHERE bucket = 'temp'")
            )
            assert cursor.scalar() == ""  # the end was reached: the next sweep starts over


class TestStorageTotals:
    async def test_gauges_follow_uploads_deletes_and_expiry_across_folds(self, env: Env) -> None:
        async def totals() -> tuple[int, int]:
            async with env.maker() as session:
                row = (
                    await session.execute(
                        text(
                            "SELECT coalesce(sum(bytes), 0), coalesce(sum(files), 0) "
                            "FROM file_storage_deltas WHERE bucket = 'temp'"
                        )
                    )
                ).one()
                return int(row[0]), int(row[1])

        ids = await env.add_files(4, bucket="temp", prefix="t/", expires_at=None)
        await env.add_files(2, bucket="temp", prefix="u/", expires_at=None, status="uploading")
        assert await totals() == (4, 4)
        async with env.maker() as session:
            await session.execute(
                text("UPDATE file_uploads SET upload_status = 'deleted' WHERE id = :id"),
                {"id": ids[0]},
            )
            await session.execute(text("DELETE FROM file_uploads WHERE id = :id"), {"id": ids[1]})
            await session.commit()
        assert await totals() == (2, 2)
        await cleanup.fold_gauge_deltas(env.maker)
        await cleanup.fold_gauge_deltas(env.maker)
        assert await totals() == (2, 2)
        async with env.maker() as session:
            rows = await session.execute(text("SELECT count(*) FROM file_storage_deltas"))
            assert rows.scalar() == 1  # folded into one row for the bucket

    async def test_job_gauges_match_the_job_history_across_updates_and_folds(
        self, env: Env
    ) -> None:
        by_deltas = (
            "SELECT job_type::text, status::text, sum(jobs), sum(successful_rows), "
            "sum(failed_rows), sum(seconds)::float, sum(finished) FROM job_gauge_deltas "
            "GROUP BY 1, 2 HAVING sum(jobs) <> 0 ORDER BY 1, 2"
        )
        by_jobs = (
            "SELECT job_type::text, status::text, count(*), sum(successful_rows), "
            "sum(failed_rows), coalesce(sum(extract(epoch FROM finished_at - started_at)), 0)"
            "::float, count(finished_at) FROM background_jobs GROUP BY 1, 2 ORDER BY 1, 2"
        )
        steps = (
            "INSERT INTO background_jobs (id, job_type, status, params) SELECT "
            "gen_random_uuid(), 'csv_import', 'pending', '{}' FROM generate_series(1, 3)",
            "UPDATE background_jobs SET status = 'processing', started_at = now() - interval "
            "'90 seconds', successful_rows = 5",
            "UPDATE background_jobs SET successful_rows = successful_rows",  # no change
            "UPDATE background_jobs SET status = 'completed', failed_rows = 2, finished_at = now()"
            " WHERE id = (SELECT min(id::text)::uuid FROM background_jobs)",
            "DELETE FROM background_jobs WHERE status = 'processing' AND id = "
            "(SELECT max(id::text)::uuid FROM background_jobs)",
        )
        async with env.maker() as session:
            for step in steps:
                await session.execute(text(step))
                await session.commit()
                assert (await session.execute(text(by_deltas))).all() == (
                    await session.execute(text(by_jobs))
                ).all(), step
        await cleanup.fold_gauge_deltas(env.maker)
        async with env.maker() as session:
            assert (await session.execute(text(by_deltas))).all() == (
                await session.execute(text(by_jobs))
            ).all()
            folded = await session.execute(text("SELECT count(*) FROM job_gauge_deltas"))
            assert folded.scalar() == 2  # csv_import: processing and completed
