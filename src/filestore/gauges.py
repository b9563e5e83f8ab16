"""Gauges read from the database at scrape time (jobs, import rows, storage per bucket), so
every API process reports the same totals however many workers did the work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.files.models import StorageDelta
from filestore.jobs.models import JobGaugeDelta, JobType
from filestore.metrics import REGISTRY

JOBS = Gauge("filestore_jobs", "Jobs by type and status", ["job_type", "status"], registry=REGISTRY)
CSV_ROWS = Gauge(
    "filestore_csv_import_rows",
    "Rows of all CSV imports by outcome",
    ["outcome"],
    registry=REGISTRY,
)
IMPORT_SECONDS = Gauge(
    "filestore_csv_import_duration_seconds_sum",
    "Total run time of finished CSV imports",
    registry=REGISTRY,
)
IMPORTS_FINISHED = Gauge(
    "filestore_csv_import_duration_seconds_count", "Finished CSV imports", registry=REGISTRY
)
STORAGE_BYTES = Gauge(
    "filestore_storage_bytes", "Bytes of live files per bucket", ["bucket"], registry=REGISTRY
)
STORAGE_FILES = Gauge(
    "filestore_storage_files", "Live files per bucket", ["bucket"], registry=REGISTRY
)


async def refresh(session: AsyncSession) -> None:
    """Read every value first, then replace the gauges in one go with no await in between:
    a scrape served meanwhile sees the previous complete set, never a cleared or half-filled
    one (`render` runs on the same event loop)."""
    # Summed from trigger-kept deltas (folded by the cleanup sweep), not from every job and
    # file: a scrape costs the same however long the history grows.
    d = JobGaugeDelta
    jobs = (
        await session.execute(
            select(d.job_type, d.status, func.sum(d.jobs))
            .group_by(d.job_type, d.status)
            .having(func.sum(d.jobs) != 0)
        )
    ).all()
    totals = (
        await session.execute(
            select(
                *(
                    func.coalesce(func.sum(column), 0)
                    for column in (
                        d.successful_rows,
                        d.failed_rows,
                        d.skipped_rows,
                        d.warning_rows,
                        d.seconds,
                        d.finished,
                    )
                )
            ).where(d.job_type == JobType.csv_import)
        )
    ).one()
    per_bucket = (
        await session.execute(
            select(StorageDelta.bucket, func.sum(StorageDelta.bytes), func.sum(StorageDelta.files))
            .group_by(StorageDelta.bucket)
            .having(func.sum(StorageDelta.files) != 0)
        )
    ).all()
    _publish(jobs, totals, per_bucket)


def _publish(jobs: Sequence[Any], totals: Any, per_bucket: Sequence[Any]) -> None:
    """Synchronous on purpose: nothing else runs on the event loop while the gauges change."""
    JOBS.clear()
    for job_type, status, count in jobs:
        JOBS.labels(job_type=job_type.value, status=status.value).set(count)
    for outcome, value in zip(
        ("successful", "failed", "skipped", "warning"), totals[:4], strict=True
    ):
        CSV_ROWS.labels(outcome=outcome).set(float(value))
    IMPORT_SECONDS.set(float(totals[4]))
    IMPORTS_FINISHED.set(float(totals[5]))
    STORAGE_BYTES.clear()
    STORAGE_FILES.clear()
    for bucket, size, count in per_bucket:
        STORAGE_BYTES.labels(bucket=bucket).set(float(size))
        STORAGE_FILES.labels(bucket=bucket).set(float(count))
