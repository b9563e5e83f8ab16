"""The cleanup sweep: expired files, and whatever a crash can leave behind.

1. Files whose `expires_at` has passed: object deleted, row marked `expired`.
2. Objects with no live row (a crash between storing and recording, or a delete whose object
   removal failed), older than a grace period so uploads in flight are never touched: a
   bounded slice of each bucket per sweep, resuming where the last one stopped
   (`files/orphans.py`).
3. Form uploads stuck in `uploading`/`verifying` longer than the grace period.
4. Incomplete multipart uploads older than the grace period (S3).
5. Resumable (tus) uploads past their expiry: multipart upload aborted, tail objects or partial
   file deleted, row removed (`files/tus/cleanup.py`). Steps 2 and 4 leave a live tus upload's
   bytes alone.

Each step only removes what it is sure about; the counts go on the job's `result`. Last, the
gauge deltas `/metrics` sums are folded together (`fold_gauge_deltas`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, delete, select, text, true, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore.files import direct, orphans
from filestore.files.models import FileUpload, UploadStatus
from filestore.files.tus import cleanup as tus_cleanup
from filestore.storage.errors import BucketMissing, StorageUnavailable
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)

EXPIRY_BATCH = 500
ORPHAN_BUDGET = 1000
# The gauges' delta tables folded into one row per key. Concurrent folds cannot count a delta
# twice: a row deleted by one is skipped by the other. A key whose count nets to zero has no
# rows left, so its other sums are zero too.
FOLD_DELTAS = (
    """
WITH gone AS (DELETE FROM file_storage_deltas RETURNING bucket, bytes, files)
INSERT INTO file_storage_deltas (bucket, bytes, files)
SELECT bucket, sum(bytes), sum(files) FROM gone GROUP BY bucket HAVING sum(files) <> 0
""",
    """
WITH gone AS (DELETE FROM job_gauge_deltas RETURNING *)
INSERT INTO job_gauge_deltas (job_type, status, jobs, successful_rows, failed_rows, skipped_rows,
    warning_rows, seconds, finished)
SELECT job_type, status, sum(jobs), sum(successful_rows), sum(failed_rows), sum(skipped_rows),
    sum(warning_rows), sum(seconds), sum(finished)
FROM gone GROUP BY job_type, status HAVING sum(jobs) <> 0
""",
)


@dataclass
class SweepReport:
    expired_files: int = 0
    orphan_objects: int = 0
    stuck_rows: int = 0
    aborted_uploads: int = 0
    expired_tus_uploads: int = 0
    expired_reservations: int = 0
    errors: int = 0
    # Configured buckets that do not exist: skipped by steps 2 and 4, the others still swept.
    missing_buckets: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            self.expired_files
            + self.orphan_objects
            + self.stuck_rows
            + self.aborted_uploads
            + self.expired_tus_uploads
            + self.expired_reservations
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def bucket_missing(self, bucket: str) -> None:
        if bucket not in self.missing_buckets:
            self.missing_buckets.append(bucket)
            self.errors += 1
            log.error("cleanup.bucket_missing", bucket=bucket)


def due_files_query(
    now: datetime, after: tuple[datetime, int] | None, batch: int
) -> Select[int, str, str, datetime | None]:
    """The next `batch` completed files due at `now`, after the `(expires_at, id)` given, walked
    in that order on `ix_file_uploads_expiry_due`."""
    return (
        select(FileUpload.id, FileUpload.bucket, FileUpload.object_key, FileUpload.expires_at)
        .where(
            FileUpload.upload_status == UploadStatus.completed,
            FileUpload.expires_at.is_not(None),
            FileUpload.expires_at <= now,
            true() if after is None else tuple_(FileUpload.expires_at, FileUpload.id) > after,
        )
        .order_by(FileUpload.expires_at, FileUpload.id)
        .limit(batch)
    )


async def expire_files(
    maker: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    *,
    now: datetime,
    report: SweepReport,
    batch: int = EXPIRY_BATCH,
) -> None:
    """Delete the objects of expired files and mark their rows `expired`.

    One pass over the expired rows in (expires_at, id) order (`ix_file_uploads_expiry_due`): a
    row whose object cannot be deleted is counted as an error and left for the next sweep, never
    tried again in this one, so rows that keep failing cannot hold up the others or keep the
    sweep going. No row lock and no
    database connection is held while the store is called. A store that is down ends the
    sweep (after recording what was done).
    """
    after: tuple[datetime, int] | None = None
    while True:
        async with maker() as session:
            rows = (await session.execute(due_files_query(now, after, batch))).all()
        if not rows:
            return
        after = (rows[-1].expires_at, rows[-1].id)
        deleted: list[int] = []
        try:
            for row in rows:
                try:
                    await storage.delete(row.bucket, row.object_key)
                except StorageUnavailable:
                    report.errors += 1
                    raise
                except Exception as exc:
                    report.errors += 1
                    log.warning("cleanup.expire_failed", file_id=row.id, error=str(exc)[:200])
                    continue
                deleted.append(row.id)
        finally:
            await _mark_expired(maker, deleted, now=now, report=report)
        if len(rows) < batch:
            return


async def _mark_expired(
    maker: async_sessionmaker[AsyncSession], ids: list[int], *, now: datetime, report: SweepReport
) -> None:
    if not ids:
        return
    async with maker() as session:
        result = await session.execute(
            update(FileUpload)
            .where(FileUpload.id.in_(ids), FileUpload.upload_status == UploadStatus.completed)
            .values(upload_status=UploadStatus.expired, deleted_at=now)
            .returning(FileUpload.id)
        )
        report.expired_files += len(result.all())
        await session.commit()


async def remove_orphan_objects(
    maker: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    buckets: list[str],
    *,
    older_than: datetime,
    report: SweepReport,
    budget: int = ORPHAN_BUDGET,
) -> None:
    """One bounded slice (`budget` objects) of each bucket: `files/orphans.py`."""
    counts = orphans.OrphanCounts()
    try:
        for bucket in buckets:
            try:
                await orphans.sweep_bucket(
                    maker, storage, bucket, older_than=older_than, budget=budget, counts=counts
                )
            except BucketMissing:
                report.bucket_missing(bucket)
    finally:
        report.orphan_objects += counts.deleted
        report.errors += counts.errors


async def fold_gauge_deltas(maker: async_sessionmaker[AsyncSession]) -> None:
    """Fold the per-change rows the `file_uploads` and `background_jobs` triggers append into
    one row per bucket and per job type and status (what `/metrics` sums)."""
    async with maker() as session:
        for statement in FOLD_DELTAS:
            await session.execute(text(statement))
        await session.commit()


def stuck_rows(older_than: datetime) -> tuple[ColumnElement[bool], ...]:
    """Form uploads left `uploading` or `verifying` since before `older_than` (a direct
    upload's reservation has `reserved_until` and expires by its own rule), on the partial
    index `ix_file_uploads_stuck`."""
    return (
        FileUpload.upload_status.in_([UploadStatus.uploading, UploadStatus.verifying]),
        FileUpload.reserved_until.is_(None),
        FileUpload.created_at < older_than,
    )


async def remove_stuck_rows(
    maker: async_sessionmaker[AsyncSession], *, older_than: datetime, report: SweepReport
) -> None:
    """Form uploads left `uploading` or `verifying` by a crash (a direct upload's reservation
    has `reserved_until` and expires by its own rule): their object is an orphan, removed next."""
    async with maker() as session:
        result = await session.execute(
            delete(FileUpload).where(*stuck_rows(older_than)).returning(FileUpload.id)
        )
        report.stuck_rows += len(result.scalars().all())
        await session.commit()


async def expire_reservations(
    maker: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    *,
    now: datetime,
    grace: timedelta,
    report: SweepReport,
) -> None:
    """Direct uploads never completed: their quarantined bytes deleted, their rows expired."""
    while True:
        async with maker() as session:
            done = await direct.expire_reservations(session, storage, now=now, grace=grace)
        report.expired_reservations += done
        if done < direct.RESERVATION_BATCH:
            return


async def abort_stale_uploads(
    maker: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    buckets: list[str],
    *,
    older_than: datetime,
    report: SweepReport,
) -> None:
    resumable = await tus_cleanup.protected_multipart_ids(maker)
    for bucket in buckets:
        try:
            uploads = await storage.incomplete_uploads(bucket)
        except BucketMissing:
            report.bucket_missing(bucket)
            continue
        for upload in uploads:
            if upload.initiated is not None and upload.initiated >= older_than:
                continue
            if upload.upload_id in resumable:
                continue  # a tus upload may take a day between two requests
            try:
                await storage.abort_upload(bucket, upload)
                report.aborted_uploads += 1
                log.info("cleanup.upload_aborted", bucket=bucket, key=upload.key)
            except Exception as exc:
                report.errors += 1
                log.warning(
                    "cleanup.abort_failed", bucket=bucket, key=upload.key, error=str(exc)[:200]
                )


async def sweep(
    maker: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    buckets: list[str],
    *,
    now: datetime,
    grace: timedelta,
    orphan_budget: int = ORPHAN_BUDGET,
) -> SweepReport:
    """Run every cleanup step once."""
    report = SweepReport()
    older_than = now - grace
    await expire_files(maker, storage, now=now, report=report)
    await remove_stuck_rows(maker, older_than=older_than, report=report)
    await expire_reservations(maker, storage, now=now, grace=grace, report=report)
    await remove_orphan_objects(
        maker, storage, buckets, older_than=older_than, report=report, budget=orphan_budget
    )
    await abort_stale_uploads(maker, storage, buckets, older_than=older_than, report=report)
    await fold_gauge_deltas(maker)
    removed, errors = await tus_cleanup.expire_uploads(maker, storage, now=now)
    report.expired_tus_uploads += removed
    report.errors += errors
    log.info("cleanup.sweep_done", **report.to_json())
    return report
