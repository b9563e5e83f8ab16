"""A form upload's file that ended within its sniffed head (8 KiB): verified, stored and recorded
whole, from memory.

Such a file arrives whole before anything is written (`multipart.read_head`), so `upload.py`
hands it here instead of streaming it: its bytes are sized, hashed, sniffed, scanned and (Office
files) checked in memory (`verify`), then the rest of the form is read and checked. Only when
every rule has passed is it stored, with one PUT (no multipart upload, no worker thread, no
server-side move for fields that came after it: its place is decided at the end, `store`), and
recorded with one statement (`record`, through `completion.py`: the `completed` row and its
audit event), as a tus upload's row is written at its last byte. Refused bytes leave a
`rejected` row with the reason (`record_rejected`), and were never stored.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore.auth.principal import Actor
from filestore.files import completion, containers, verify
from filestore.files import service as files_service
from filestore.files.form import UploadFields
from filestore.files.hashing import StreamHasher
from filestore.files.models import RejectionReason, UploadStatus
from filestore.files.names import extension_of
from filestore.files.scan import VirusScan
from filestore.files.service import StoredObject
from filestore.files.sinks import SizeGuard, Tee
from filestore.files.sniff import SNIFF_BYTES, sniff
from filestore.requests import ClientInfo
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)


async def verify_bytes(
    settings: Settings, stored: StoredObject, data: bytes, *, user_id: int
) -> None:
    """Every check of the bytes of a file that arrived whole (size, hashes, type, virus,
    Office container), in memory; fills in `stored`'s type, size, hashes and scan status, or
    raises the refusal. Nothing is stored."""
    extension = extension_of(stored.filename)
    stored.mime_type = sniff(data[:SNIFF_BYTES], extension)
    guard = SizeGuard(settings.max_file_size)
    hasher = StreamHasher()
    scan = await VirusScan.start(settings, filename=stored.filename, user_id=user_id)
    sinks = Tee(guard, hasher, scan)
    try:
        await sinks.write(memoryview(data))
        await sinks.finish()
        await containers.check(in_memory(data), size=len(data), extension=extension)
    except BaseException:
        sinks.abort()
        raise
    stored.size, stored.md5, stored.sha256 = guard.size, hasher.md5, hasher.sha256
    stored.scan_status = scan.status


async def store(
    storage: ObjectStorage,
    settings: Settings,
    stored: StoredObject,
    data: bytes,
    *,
    fields: UploadFields,
    user: Actor,
    now: datetime,
) -> None:
    """One PUT of a file verified whole. Fields after the file may have changed its place:
    nothing was stored yet, so it is simply stored there (`stored` is updated)."""
    if not files_service.is_placed_right(
        settings, fields=fields, user=user, bucket=stored.bucket, key=stored.key
    ):
        stored.bucket, stored.key = files_service.upload_location(
            settings, fields=fields, user=user, now=now
        )
    await storage.put_bytes(stored.bucket, stored.key, data, content_type=stored.mime_type)
    log.info("file.stored", bucket=stored.bucket, key=stored.key, size=stored.size)


async def record(
    statements: async_sessionmaker[AsyncSession],
    settings: Settings,
    stored: StoredObject,
    *,
    fields: UploadFields,
    user: Actor,
    now: datetime,
    client: ClientInfo,
) -> completion.CompletedFile:
    """The stored file's `completed` row and audit event: one statement (`completion.py`)."""
    expires_at = files_service.upload_expiry(settings, fields=fields, now=now)
    async with statements() as session:
        return await completion.record(
            session,
            stored=stored,
            fields=fields,
            user=user,
            expires_at=expires_at,
            client=client,
        )


async def record_rejected(
    sessionmaker: async_sessionmaker[AsyncSession],
    stored: StoredObject,
    *,
    fields: UploadFields,
    user: Actor,
    reason: RejectionReason,
) -> None:
    """The `rejected` row of a file refused while verified whole (never stored)."""
    row = verify.unverified_row(
        fields,
        user,
        filename=stored.filename,
        bucket=stored.bucket,
        key=stored.key,
        status=UploadStatus.rejected,
        file_size=stored.size,
        rejection_reason=reason.value,
    )
    try:
        async with sessionmaker() as session:
            session.add(row)
            await asyncio.shield(session.commit())
    except Exception as exc:
        log.error("file.reject_record_failed", filename=stored.filename, error=str(exc)[:200])


def in_memory(data: bytes) -> containers.Fetch:
    """`containers.check`'s ranged reads, from bytes held in memory."""

    async def fetch(start: int, end: int) -> bytes:
        return data[start:end]

    return fetch
