"""Resumable upload records: creation (the form's rules on `Upload-Metadata`), lookup, the
lease that lets one request at a time append, and committing what a request appended.

No HTTP here and no bytes: `appender.py` moves bytes, `patch.py` drives one request.

The lease: a request appends only while it holds `lock_token` (until `locked_until`), taken and
given back by single conditional UPDATEs. No database connection is held while bytes arrive, so
a slow phone never pins a pooled connection; a request that stalls past the lease loses it to
the client's retry, and its late writes are refused (its commit is conditional on the token).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth.models import User
from filestore.errors import NotFound, PayloadTooLarge, Unprocessable
from filestore.files import service as files_service
from filestore.files.form import UploadFields
from filestore.files.tus.models import TusStatus, TusUpload
from filestore.files.tus.protocol import Locked
from filestore.settings import Settings
from filestore.storage.resumable import Part

LEASE = timedelta(seconds=60)
# Metadata keys tus clients add by convention (Uppy, tus-js-client demos): hints, never trusted.
CLIENT_HINTS = frozenset({"filetype", "type", "relativePath"})
TEMP_PREFIX = ".tus"


def temp_prefix(upload_id: str) -> str:
    """Where an upload keeps its temporary objects (S3 tail, local partial file)."""
    return f"{TEMP_PREFIX}/{upload_id}"


@dataclass
class Progress:
    """What one request leaves behind: the new offset and where its bytes are."""

    offset: int
    multipart_id: str | None
    parts: list[Part]
    tail_key: str | None


def parse_fields(
    settings: Settings, pairs: dict[str, str], *, now: datetime
) -> tuple[UploadFields, str]:
    """The upload's form fields and sanitised filename from `Upload-Metadata`, by the multipart
    form's own rules (the same parser, the same refusals)."""
    fields = UploadFields()
    filename = pairs.get("filename", pairs.get("name"))
    for name, value in pairs.items():
        if name in {"filename", "name"} or name in CLIENT_HINTS:
            continue
        fields.parse(name, value, now=now)
    checked = files_service.check_upload_filename(
        settings, part_name="file", filename=filename, file_type=fields.file_type
    )
    return fields, checked


async def check_fields(session: AsyncSession, *, fields: UploadFields, user: User) -> None:
    """The rules that need the user or the database, as the form applies them."""
    for name in ("file_type", "customer_id", "ticket_id"):
        await files_service.check_upload_field(session, fields=fields, name=name, user=user)
    files_service.check_upload_owner(fields, user=user)


def check_length(settings: Settings, length: int) -> None:
    if length > settings.max_file_size:
        raise PayloadTooLarge(
            f"Upload-Length is larger than the limit of {settings.max_file_size} bytes",
            code="file_too_large",
        )
    if length == 0:
        raise Unprocessable("The file is empty", code="empty_file")


def expiry(settings: Settings, now: datetime) -> datetime:
    return now + timedelta(hours=settings.tus_upload_expiry_hours)


async def create(
    session: AsyncSession,
    *,
    settings: Settings,
    user: User,
    pairs: dict[str, str],
    length: int | None,
    now: datetime,
) -> TusUpload:
    """Check everything the form checks before a byte is stored, then add the upload (flushed)."""
    if length is not None:
        check_length(settings, length)
    fields, filename = parse_fields(settings, pairs, now=now)
    await check_fields(session, fields=fields, user=user)
    bucket, key = files_service.upload_location(settings, fields=fields, user=user, now=now)
    upload = TusUpload(
        id=secrets.token_hex(16),
        user_id=user.id,
        status=TusStatus.uploading,
        upload_length=length,
        upload_offset=0,
        upload_metadata=pairs,
        filename=filename,
        bucket=bucket,
        object_key=key,
        parts=[],
        expires_at=expiry(settings, now),
    )
    session.add(upload)
    await session.flush()
    return upload


def _not_found(upload_id: str) -> NotFound:
    return NotFound(f"Upload {upload_id} not found", code="upload_not_found")


async def get_owned(
    session: AsyncSession, *, upload_id: str, user: User, now: datetime
) -> TusUpload:
    """The caller's own upload; 404 for anyone else's, an expired or a terminated one."""
    upload = await session.get(TusUpload, upload_id, populate_existing=True)
    if upload is None or upload.user_id != user.id:
        raise _not_found(upload_id)
    if upload.status is TusStatus.uploading and upload.expires_at <= now:
        raise _not_found(upload_id)
    return upload


async def acquire(
    session: AsyncSession, *, upload_id: str, user: User, now: datetime
) -> tuple[TusUpload, str]:
    """Take the upload's lease (committed); 423 while another request holds it."""
    token = secrets.token_hex(16)
    result = await session.execute(
        update(TusUpload)
        .where(
            TusUpload.id == upload_id,
            TusUpload.user_id == user.id,
            TusUpload.status == TusStatus.uploading,
            TusUpload.expires_at > now,
            or_(TusUpload.lock_token.is_(None), TusUpload.locked_until < now),
        )
        .values(lock_token=token, locked_until=now + LEASE)
        .returning(TusUpload.id)
    )
    taken = result.scalar_one_or_none() is not None
    await session.commit()
    upload = await get_owned(session, upload_id=upload_id, user=user, now=now)
    if not taken:
        if upload.status is TusStatus.uploading:
            raise Locked(
                "Another request is appending to this upload; retry shortly",
                headers={"Retry-After": "1"},
            )
        return upload, ""
    return upload, token


async def renew(session: AsyncSession, *, upload_id: str, token: str, now: datetime) -> bool:
    """Extend the lease; False when it was lost (another request took over)."""
    result = await session.execute(
        update(TusUpload)
        .where(TusUpload.id == upload_id, TusUpload.lock_token == token)
        .values(locked_until=now + LEASE)
        .returning(TusUpload.id)
    )
    await session.commit()
    return result.scalar_one_or_none() is not None


async def release(session: AsyncSession, *, upload_id: str, token: str) -> None:
    await session.execute(
        update(TusUpload)
        .where(TusUpload.id == upload_id, TusUpload.lock_token == token)
        .values(lock_token=None, locked_until=None)
    )
    await session.commit()


async def commit_progress(
    session: AsyncSession,
    *,
    upload_id: str,
    token: str,
    progress: Progress,
    length: int | None,
    expires_at: datetime,
    keep_lease: bool,
) -> bool:
    """Record what a request appended, if it still holds the lease (committed). The lease is
    given back unless `keep_lease` (the last byte: verification follows under it)."""
    values: dict[str, object] = {
        "upload_offset": progress.offset,
        "multipart_id": progress.multipart_id,
        "parts": [part.to_json() for part in progress.parts],
        "tail_key": progress.tail_key,
        "upload_length": length,
        "expires_at": expires_at,
    }
    if not keep_lease:
        values.update(lock_token=None, locked_until=None)
    result = await session.execute(
        update(TusUpload)
        .where(TusUpload.id == upload_id, TusUpload.lock_token == token)
        .values(**values)
        .returning(TusUpload.id)
    )
    await session.commit()
    return result.scalar_one_or_none() is not None
