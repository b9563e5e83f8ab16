"""One request that appends bytes to a resumable upload (PATCH, or POST with creation-with-upload).

Take the upload's lease → check the offset and length → stream the body into the appender,
checking the declared length and (if sent) `Upload-Checksum` on the way → record the new offset
→ on the last byte, verification and the row (`complete.py`). Nothing of a refused request is
kept (wrong checksum: 460; past the declared length: 413); a request cut off by the client keeps
what arrived (so the client resumes from there), unless it carried a checksum that can now
never be checked.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import ClientDisconnect

from filestore.auth.models import User
from filestore.errors import BadRequest, PayloadTooLarge, RequestTimeout
from filestore.files import pacing
from filestore.files.models import FileUpload
from filestore.files.tus import complete, running
from filestore.files.tus import service as tus_service
from filestore.files.tus.appender import Appender, open_appender
from filestore.files.tus.models import TusStatus, TusUpload
from filestore.files.tus.protocol import ChecksumMismatch, Gone, Locked, offset_conflict
from filestore.requests import NO_CLIENT, ClientInfo
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)

RENEW_EVERY_SECONDS = 15.0


@dataclass
class TusContext:
    """What a tus request needs; built by the router, free of HTTP."""

    settings: Settings
    storage: ObjectStorage
    sessionmaker: async_sessionmaker[AsyncSession]
    user: User
    now: datetime
    client: ClientInfo = NO_CLIENT


@dataclass
class Appended:
    """The upload after a request: what HEAD would now say, and the file once complete."""

    offset: int
    length: int | None
    expires_at: datetime
    file: FileUpload | None = None


async def append(
    ctx: TusContext,
    *,
    upload_id: str,
    offset: int,
    length: int | None,
    checksum: tuple[str, bytes] | None,
    content_length: int | None,
    body: AsyncIterator[bytes],
    complete: bool | None = None,
) -> Appended:
    """Append the request body at `offset`; raises a FilestoreError for anything refused.
    `complete` is the IETF draft's `Upload-Complete`: True says the body ends the file (which
    fixes a deferred length), False that more will follow."""
    async with ctx.sessionmaker() as session:
        upload, token = await tus_service.acquire(
            session, upload_id=upload_id, user=ctx.user, now=ctx.now
        )
    if not token:
        return await _finished(ctx, upload, offset=offset, content_length=content_length)
    try:
        return await _append_locked(
            ctx,
            upload,
            token,
            offset=offset,
            length=_new_length(ctx.settings, upload, length),
            checksum=checksum,
            content_length=content_length,
            body=body,
            complete=complete,
        )
    finally:
        async with ctx.sessionmaker() as session:
            await tus_service.release(session, upload_id=upload_id, token=token)


def _new_length(settings: Settings, upload: TusUpload, length: int | None) -> int | None:
    """The upload's length after this request (a deferred length may be given now, once)."""
    if length is None:
        return upload.upload_length
    if upload.upload_length is None:
        tus_service.check_length(settings, length)
        if length < upload.upload_offset:
            raise BadRequest(
                f"Upload-Length {length} is less than the bytes already received",
                code="invalid_length",
            )
        return length
    if length != upload.upload_length:
        raise BadRequest("Upload-Length cannot change once set", code="invalid_length")
    return length


async def _finished(
    ctx: TusContext, upload: TusUpload, *, offset: int, content_length: int | None
) -> Appended:
    """A PATCH to an upload that is no longer taking bytes."""
    if upload.status is TusStatus.rejected:
        raise Gone(
            upload.rejection_detail or "The upload was rejected",
            code=upload.rejection_code or "upload_rejected",
        )
    if offset != upload.upload_offset or content_length:
        raise offset_conflict(upload.upload_offset, offset)
    file = None
    if upload.file_id is not None:
        async with ctx.sessionmaker() as session:
            file = await session.get(FileUpload, upload.file_id)
    return Appended(upload.upload_offset, upload.upload_length, upload.expires_at, file)


async def _append_locked(
    ctx: TusContext,
    upload: TusUpload,
    token: str,
    *,
    offset: int,
    length: int | None,
    checksum: tuple[str, bytes] | None,
    content_length: int | None,
    body: AsyncIterator[bytes],
    complete: bool | None,
) -> Appended:
    if offset != upload.upload_offset:
        raise offset_conflict(upload.upload_offset, offset)
    limit = length if length is not None else ctx.settings.max_file_size
    if content_length is not None and offset + content_length > limit:
        raise _past_length(limit)
    if length is not None and offset == length:
        # Every byte is stored but verification did not finish (a 503, a crash): run it again.
        return await _finish(ctx, upload, length)
    appender = await open_appender(
        ctx.storage,
        upload,
        expected=content_length,
        part_size=ctx.settings.upload_chunk_size,
        parts_in_flight=ctx.settings.upload_concurrency,
    )
    hashes = running.take(upload.id, offset) if ctx.settings.virus_scan == "off" else None
    try:
        hasher = hashlib.new(checksum[0]) if checksum else None
        disconnected = await _receive(
            ctx, upload.id, token, appender, Hashes(hasher, hashes), body, offset, limit
        )
        if hasher is not None and checksum is not None:
            if disconnected:
                raise ClientDisconnect()  # unverifiable: nothing of it is kept
            if hasher.digest() != checksum[1]:
                raise ChecksumMismatch(
                    f"The body's {checksum[0]} does not match Upload-Checksum; nothing was kept"
                )
        new_offset = offset + appender.received
        if complete and not disconnected:
            length = _completed_length(ctx.settings, length, new_offset)
        elif complete is False and length is not None and new_offset == length:
            raise BadRequest(
                "Upload-Complete: ?0, but the body reaches Upload-Length", code="invalid_length"
            )
        final = length is not None and new_offset == length
        progress = await appender.save(final=final)
    except BaseException:
        await appender.discard()
        raise
    expires_at = tus_service.expiry(ctx.settings, datetime.now(ctx.now.tzinfo))
    async with ctx.sessionmaker() as session:
        recorded = await tus_service.commit_progress(
            session,
            upload_id=upload.id,
            token=token,
            progress=progress,
            length=length,
            expires_at=expires_at,
            keep_lease=final,
        )
    if not recorded:
        raise Locked("Another request took over this upload; resume from HEAD")
    await appender.forget_previous()
    log.info("tus.appended", upload_id=upload.id, offset=progress.offset, final=final)
    if hashes is not None:
        await hashes.settle(progress.offset)
        if not final:
            running.keep(upload.id, hashes)
    if final:
        assert length is not None
        return await _finish(ctx, upload, length, hashes)
    return Appended(progress.offset, length, expires_at)


@dataclass
class Hashes:
    """What each chunk of the body is hashed into: the request's own `Upload-Checksum`, and
    the upload's running MD5 + SHA-256 (when this process has them)."""

    checksum: hashlib._Hash | None
    running: running.RunningHash | None

    async def write(self, chunk: bytes) -> None:
        if self.checksum is not None:
            self.checksum.update(chunk)
        if self.running is not None:
            await self.running.write(memoryview(chunk))


async def _receive(
    ctx: TusContext,
    upload_id: str,
    token: str,
    appender: Appender,
    hashes: Hashes,
    body: AsyncIterator[bytes],
    offset: int,
    limit: int,
) -> bool:
    """Stream the body into the appender; True when the client went away before its end."""
    renewed = time.monotonic()
    try:
        async for chunk in pacing.paced(body, pacing.Pace.of(ctx.settings)):
            if not chunk:
                continue
            if offset + appender.received + len(chunk) > limit:
                raise _past_length(limit)
            await appender.write(memoryview(chunk))
            await hashes.write(chunk)
            if time.monotonic() - renewed > RENEW_EVERY_SECONDS:
                async with ctx.sessionmaker() as session:
                    held = await tus_service.renew(
                        session, upload_id=upload_id, token=token, now=datetime.now(ctx.now.tzinfo)
                    )
                if not held:
                    raise Locked("This request stalled and lost the upload; resume from HEAD")
                renewed = time.monotonic()
    except RequestTimeout as exc:
        # A client gone without a word (a phone that lost its network), or a trickle: keep
        # what came, and give the upload back before the lease would lapse.
        log.info("tus.client_idle", upload_id=upload_id, received=appender.received, why=exc.code)
        return True
    except ClientDisconnect:
        log.info("tus.client_disconnected", upload_id=upload_id, received=appender.received)
        return True
    return False


def _completed_length(settings: Settings, length: int | None, new_offset: int) -> int:
    """The length a request with `Upload-Complete: ?1` gives the upload: where its body ends."""
    if length is None:
        tus_service.check_length(settings, new_offset)
        return new_offset
    if new_offset != length:
        raise BadRequest(
            f"Upload-Complete: ?1, but the upload is {length} bytes and the body ends at "
            f"{new_offset}",
            code="invalid_length",
        )
    return length


def _past_length(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The body goes past the upload's length ({limit} bytes); nothing of it was kept",
        code="upload_length_exceeded",
    )


async def _finish(
    ctx: TusContext, upload: TusUpload, length: int, hashes: running.RunningHash | None = None
) -> Appended:
    file = await complete.finish(
        ctx.sessionmaker,
        ctx.storage,
        ctx.settings,
        upload=upload,
        now=datetime.now(ctx.now.tzinfo),
        hashes=hashes,
        client=ctx.client,
    )
    return Appended(length, length, upload.expires_at, file)
