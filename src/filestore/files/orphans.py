"""The orphan step of the cleanup sweep: objects with no live row, found a bounded slice at a time.

Each sweep lists at most `budget` objects of each bucket, starting after the key where the
previous sweep stopped (`orphan_sweep_cursors`, S3's StartAfter), so a bucket of millions of
objects costs every sweep the same bounded work, and a sweep that dies resumes where the last
completed slice ended. Reaching a bucket's end starts it over at the next sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore.files.models import FileUpload, OrphanSweepCursor, UploadStatus
from filestore.files.tus import cleanup as tus_cleanup
from filestore.storage.store import HEALTH_PROBE_KEY, ListedObject, ObjectStorage

log = structlog.get_logger(__name__)

# Rows whose object is theirs: a pending direct upload's quarantined bytes are no orphan.
OWNS_ITS_OBJECT = (
    UploadStatus.completed,
    UploadStatus.uploading,
    UploadStatus.pending,
    UploadStatus.verifying,
)


@dataclass
class OrphanCounts:
    deleted: int = 0
    errors: int = 0


async def owned_keys(session: AsyncSession, bucket: str, keys: list[str]) -> set[str]:
    """Which of `keys` a row still owns (one index probe per key: `uq_file_uploads_bucket_key`)."""
    found = await session.execute(
        select(FileUpload.object_key).where(
            FileUpload.bucket == bucket,
            FileUpload.object_key.in_(keys),
            FileUpload.upload_status.in_(OWNS_ITS_OBJECT),
        )
    )
    return set(found.scalars())


async def _cursor(maker: async_sessionmaker[AsyncSession], bucket: str) -> str:
    async with maker() as session:
        row = await session.get(OrphanSweepCursor, bucket)
        return row.after_key if row is not None else ""


async def _save_cursor(maker: async_sessionmaker[AsyncSession], bucket: str, after: str) -> None:
    async with maker() as session:
        stmt = insert(OrphanSweepCursor).values(bucket=bucket, after_key=after)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[OrphanSweepCursor.bucket],
                set_={"after_key": stmt.excluded.after_key, "updated_at": stmt.excluded.updated_at},
            )
        )
        await session.commit()


async def _next_slice(
    storage: ObjectStorage, bucket: str, *, after: str, budget: int
) -> tuple[list[ListedObject], bool]:
    """The first `budget` objects after `after` in key order, and whether that reached the
    bucket's end. S3 lists in key order, so this reads only `budget` keys; the local store (one
    machine, development) lists in directory order, so its keys are all read and sorted."""
    ordered = storage.lists_in_key_order
    taken: list[ListedObject] = []
    listing = storage.list_objects(bucket, after=after)
    try:
        async for page in listing:
            taken.extend(page if not ordered else page[: budget - len(taken)])
            if ordered and len(taken) >= budget:
                return taken, False
    finally:
        await listing.aclose()
    if not ordered:
        taken.sort(key=lambda obj: obj.key)
        return taken[:budget], len(taken) <= budget
    return taken, True


async def sweep_bucket(
    maker: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    bucket: str,
    *,
    older_than: datetime,
    budget: int,
    counts: OrphanCounts,
) -> None:
    """Check one slice of `bucket` and delete its orphans older than `older_than`."""
    after = await _cursor(maker, bucket)
    listed, at_end = await _next_slice(storage, bucket, after=after, budget=budget)
    keys = [
        obj.key for obj in listed if obj.last_modified < older_than and obj.key != HEALTH_PROBE_KEY
    ]
    if keys:
        async with maker() as session:
            owned = await owned_keys(session, bucket, keys)
        owned |= await tus_cleanup.protected_keys(maker, bucket, keys)
        for key in keys:
            if key in owned:
                continue
            try:
                await storage.delete(bucket, key)
                counts.deleted += 1
                log.info("cleanup.orphan_deleted", bucket=bucket, key=key)
            except Exception as exc:
                counts.errors += 1
                log.warning("cleanup.orphan_failed", bucket=bucket, key=key, error=str(exc)[:200])
    await _save_cursor(maker, bucket, "" if at_end or not listed else listed[-1].key)
