"""The Overview's queries. Each one is a GROUP BY over a window bounded by `created_at` (BRIN
index `ix_file_uploads_created_brin`, so ten million rows are not all read), or over the few
folded rows of `file_storage_deltas` that `/metrics` reads too.

They run with sequential scans and JIT off for their transaction (`_WINDOW_PLAN`): rows are
appended in `created_at` order, so the window's rows sit together and the BRIN index reads a few
percent of the table, but PostgreSQL's BRIN estimate does not know it. At 10M files (a 30-day
window of ~390,000 rows) it chose a parallel scan of the whole table: 3.0 s for the top
customers against 1.2 s through the index (`bench/scale.py`); JIT compiling cost more than it
saved."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.customers.models import Customer
from filestore.files.models import FileUpload, StorageDelta, UploadStatus
from filestore.jobs.models import BackgroundJob, JobStatus, JobType
from filestore.stats.schemas import (
    BucketUsage,
    CustomerUsage,
    ImportDay,
    Overview,
    UploadDay,
)

TOP_CUSTOMERS = 10
# Uploads that were accepted, whatever became of the file since.
ACCEPTED = (UploadStatus.completed, UploadStatus.deleted, UploadStatus.expired)


def window_start(days: int, now: datetime | None = None) -> datetime:
    """UTC midnight `days - 1` days ago: the window holds `days` calendar days, today included."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    start = today - timedelta(days=days - 1)
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def _utc_day(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


async def storage(session: AsyncSession) -> list[BucketUsage]:
    d = StorageDelta
    rows = (
        await session.execute(
            select(d.bucket, func.sum(d.bytes), func.sum(d.files))
            .group_by(d.bucket)
            .order_by(func.sum(d.bytes).desc(), d.bucket)
        )
    ).all()
    return [BucketUsage(bucket=b, bytes=int(n or 0), files=int(f or 0)) for b, n, f in rows if f]


async def top_customers(session: AsyncSession, since: datetime) -> list[CustomerUsage]:
    f = FileUpload
    total = func.sum(f.file_size)
    ranked = (
        select(f.customer_id, total.label("bytes"), func.count().label("files"))
        .where(
            f.created_at >= since,
            f.upload_status == UploadStatus.completed,
            f.customer_id.is_not(None),
        )
        .group_by(f.customer_id)
        .order_by(total.desc(), f.customer_id)
        .limit(TOP_CUSTOMERS)
        .subquery()
    )
    rows = (
        await session.execute(
            select(ranked.c.customer_id, Customer.full_name, ranked.c.bytes, ranked.c.files)
            .join(Customer, Customer.id == ranked.c.customer_id)
            .order_by(ranked.c.bytes.desc(), ranked.c.customer_id)
        )
    ).all()
    return [
        CustomerUsage(customer_id=c, full_name=name, bytes=int(n), files=int(k))
        for c, name, n, k in rows
    ]


def _days(since: datetime, days: int) -> list[date]:
    return [since.date() + timedelta(days=i) for i in range(days)]


async def uploads(session: AsyncSession, since: datetime, days: int) -> list[UploadDay]:
    f = FileUpload
    day = _utc_day(f.created_at)
    rows = (
        await session.execute(
            select(day, f.upload_status, f.rejection_reason, func.count(), func.sum(f.file_size))
            .where(
                f.created_at >= since,
                f.upload_status.in_([*ACCEPTED, UploadStatus.rejected]),
            )
            .group_by(day, f.upload_status, f.rejection_reason)
        )
    ).all()
    out = {
        d: UploadDay(day=d, completed=0, rejected=0, bytes=0, rejected_by_reason={})
        for d in _days(since, days)
    }
    for d, status, reason, count, size in rows:
        entry = out.get(d)
        if entry is None:
            continue
        if status in ACCEPTED:
            entry.completed += count
            entry.bytes += int(size or 0)
        else:
            entry.rejected += count
            key = reason or "other"
            entry.rejected_by_reason[key] = entry.rejected_by_reason.get(key, 0) + count
    return list(out.values())


async def imports(session: AsyncSession, since: datetime, days: int) -> list[ImportDay]:
    j = BackgroundJob
    day = _utc_day(j.created_at)
    seconds = func.extract("epoch", j.finished_at - j.started_at)
    rows = (
        await session.execute(
            select(
                day,
                j.status,
                func.count(),
                func.sum(j.successful_rows),
                func.sum(j.failed_rows),
                func.sum(j.skipped_rows),
                func.sum(seconds),
                func.count(seconds),
                func.max(seconds),
            )
            .where(
                j.created_at >= since,
                j.job_type == JobType.csv_import,
                # A dry run (the wizard's check) writes nothing: not an import.
                j.params["validation_rules"]["dry_run"].as_boolean().is_not(True),
            )
            .group_by(day, j.status)
        )
    ).all()
    sums: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for d, status, count, ok, failed, skipped, secs, timed, longest in rows:
        s = sums[d]
        s["imports"] += count
        if status in (JobStatus.failed, JobStatus.cancelled):
            s["failed"] += count
        s["ok"] += ok or 0
        s["bad"] += failed or 0
        s["skipped"] += skipped or 0
        s["seconds"] += float(secs or 0)
        s["timed"] += timed
        s["longest"] = max(s["longest"], float(longest or 0))
    result = []
    for d in _days(since, days):
        s = sums.get(d, defaultdict(float))
        timed = s["timed"]
        result.append(
            ImportDay(
                day=d,
                imports=int(s["imports"]),
                failed=int(s["failed"]),
                rows_imported=int(s["ok"]),
                rows_failed=int(s["bad"]),
                rows_skipped=int(s["skipped"]),
                average_seconds=round(s["seconds"] / timed, 3) if timed else None,
                longest_seconds=round(s["longest"], 3) if timed else None,
            )
        )
    return result


_WINDOW_PLAN = text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)"
)


async def overview(session: AsyncSession, *, days: int, now: datetime | None = None) -> Overview:
    """The Overview over the last `days` days; `session` must be in a transaction (the planner
    settings are local to it)."""
    since = window_start(days, now)
    await session.execute(_WINDOW_PLAN)
    return Overview(
        since=since,
        days=days,
        storage=await storage(session),
        top_customers=await top_customers(session, since),
        uploads=await uploads(session, since, days),
        imports=await imports(session, since, days),
    )
