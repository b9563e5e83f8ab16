"""The cleanup sweep's part for resumable uploads.

Unfinished uploads past `expires_at` lose their S3 multipart upload, tail objects or partial
file, and their row; finished ones (completed or rejected) lose only their row. While an upload
is alive the sweep's general steps must leave its bytes alone: its multipart upload, its
`.tus/<id>/` objects and, once every byte is in, its object at the final key.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore.files.tus.appender import remove_stored
from filestore.files.tus.models import TusStatus, TusUpload
from filestore.files.tus.service import TEMP_PREFIX
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)

BATCH = 200


async def expire_uploads(
    maker: async_sessionmaker[AsyncSession], storage: ObjectStorage, *, now: datetime
) -> tuple[int, int]:
    """Remove expired uploads (an unfinished one with its bytes, a finished one's record only);
    returns (removed, errors). One being appended to right now (its lease still running) is
    skipped and comes back in a later sweep."""
    removed = errors = 0
    async with maker() as session:
        stale = (
            await session.execute(
                select(TusUpload)
                .where(
                    TusUpload.expires_at <= now,
                    or_(TusUpload.locked_until.is_(None), TusUpload.locked_until < now),
                )
                .order_by(TusUpload.expires_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
        for upload in list(stale):
            if upload.status is TusStatus.uploading:
                try:
                    await remove_stored(storage, upload)
                except Exception as exc:
                    errors += 1
                    log.warning("cleanup.tus_failed", upload_id=upload.id, error=str(exc)[:200])
                    continue
            await session.delete(upload)
            removed += 1
            log.info("cleanup.tus_expired", upload_id=upload.id, status=upload.status.value)
        await session.commit()
    return removed, errors


async def protected_keys(
    maker: async_sessionmaker[AsyncSession], bucket: str, keys: list[str]
) -> set[str]:
    """Which of `keys` belong to a live upload: `.tus/<id>/…` of a row that still exists, or
    the final key of one still being uploaded or verified."""
    temp_ids = {key.split("/")[1] for key in keys if key.startswith(f"{TEMP_PREFIX}/")}
    async with maker() as session:
        live_ids: set[str] = set()
        if temp_ids:
            found = await session.execute(
                select(TusUpload.id).where(TusUpload.id.in_(sorted(temp_ids)))
            )
            live_ids = set(found.scalars())
        finals = await session.execute(
            select(TusUpload.object_key).where(
                TusUpload.bucket == bucket,
                TusUpload.status == TusStatus.uploading,
                TusUpload.object_key.in_(keys),
            )
        )
        protected = set(finals.scalars())
    for key in keys:
        if key.startswith(f"{TEMP_PREFIX}/") and key.split("/")[1] in live_ids:
            protected.add(key)
    return protected


async def protected_multipart_ids(maker: async_sessionmaker[AsyncSession]) -> set[str]:
    """The S3 multipart uploads live tus uploads are still appending to."""
    async with maker() as session:
        rows = await session.execute(
            select(TusUpload.multipart_id).where(TusUpload.multipart_id.is_not(None))
        )
        return {value for value in rows.scalars() if value}
