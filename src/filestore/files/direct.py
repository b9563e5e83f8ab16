"""Direct uploads: the client PUTs its bytes straight to the store with a presigned URL, then
asks us to complete; the API moves no file bytes (it reads 8 KiB back to sniff, or the whole
object once when virus scanning is on).

reserve:  the same checks as a multipart upload (auth, visibility, extension, declared size),
          a `pending` row pointing at the file's FINAL bucket and key, and a presigned PUT to
          that key whose signature binds Content-Length, x-amz-checksum-sha256 and
          If-None-Match: *. The row's state is the quarantine: only `completed` rows are
          listed, served or given a presigned GET, so bytes at a `pending` row's key are
          unreachable through the API. (A separate quarantine key cost a full server-side copy
          of the file at `complete`: S3 has no rename.)
complete: `verifying`, the bytes checked through `verify.py` (size, hashes, type, virus
          scan) against the declaration, `completed` in place. A mismatch deletes the bytes
          and leaves the row `rejected` with its reason.
Reservations never completed are swept by `expire_reservations` (object and row).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore.audit import service as audit_service
from filestore.auth.models import User
from filestore.errors import Conflict, NotFound
from filestore.files import service as files_service
from filestore.files import verify
from filestore.files.form import UploadFields
from filestore.files.models import FileUpload, RejectionReason, UploadStatus
from filestore.files.schemas import DirectUploadIn
from filestore.files.service import StoredObject
from filestore.files.sinks import file_too_large
from filestore.requests import NO_CLIENT, ClientInfo
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)

RESERVATION_BATCH = 500


@dataclass(frozen=True)
class Reservation:
    row: FileUpload
    url: str
    headers: dict[str, str]
    expires_at: datetime


def _fields_of(request: DirectUploadIn, now: datetime) -> UploadFields:
    """The request as the multipart form's fields, through the form's own parser."""
    fields = UploadFields()
    values: dict[str, str | None] = {
        "file_type": request.file_type,
        "customer_id": None if request.customer_id is None else str(request.customer_id),
        "ticket_id": None if request.ticket_id is None else str(request.ticket_id),
        "service_id": None if request.service_id is None else str(request.service_id),
        "metadata": None if request.metadata is None else json.dumps(request.metadata),
        "expires_at": None if request.expires_at is None else request.expires_at.isoformat(),
    }
    for name, value in values.items():
        if value is not None:
            fields.parse(name, value, now=now)
    return fields


async def _check_access(session: AsyncSession, fields: UploadFields, user: User) -> None:
    for name in ("file_type", "customer_id", "ticket_id"):
        await files_service.check_upload_field(session, fields=fields, name=name, user=user)


async def reserve(
    session: AsyncSession,
    *,
    settings: Settings,
    storage: ObjectStorage,
    user: User,
    request: DirectUploadIn,
    now: datetime,
) -> Reservation:
    """Check the declared upload like a multipart one, add its `pending` row, sign the PUT."""
    if storage.kind != "s3":
        raise Conflict(
            "Direct uploads need S3 storage (MINIO_ENDPOINT); use POST /files/upload",
            code="direct_uploads_unavailable",
        )
    fields = _fields_of(request, now)
    filename = files_service.check_upload_filename(
        settings, part_name="file", filename=request.filename, file_type=fields.file_type
    )
    if request.file_size > settings.max_file_size:
        raise file_too_large(settings.max_file_size)
    await _check_access(session, fields, user)
    sha256 = request.sha256.lower()
    declared = StoredObject(bucket="", key="", filename=filename, mime_type="", sha256=sha256)
    files_service.check_upload_complete(fields, user=user, stored=declared)
    ttl = timedelta(seconds=settings.direct_upload_url_ttl_seconds)
    bucket, key = files_service.upload_location(settings, fields=fields, user=user, now=now)
    row = verify.unverified_row(
        fields,
        user,
        filename=filename,
        bucket=bucket,
        key=key,
        status=UploadStatus.pending,
        file_size=request.file_size,
        sha256=sha256,
        expires_at=files_service.upload_expiry(settings, fields=fields, now=now),
        reserved_until=now + ttl,
    )
    session.add(row)
    await session.flush()
    headers = {
        "Content-Length": str(request.file_size),
        "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha256)).decode(),
        "If-None-Match": "*",
    }
    url = storage.presigned_put(row.bucket, row.object_key, expires=ttl, headers=headers)
    assert url is not None  # the store is S3 (checked above)
    log.info("file.direct_reserved", upload_id=row.id, size=request.file_size)
    return Reservation(row=row, url=url, headers=headers, expires_at=now + ttl)


async def complete(
    maker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    storage: ObjectStorage,
    user: User,
    upload_id: int,
    now: datetime,
    client: ClientInfo = NO_CLIENT,
) -> tuple[FileUpload, bool]:
    """Verify and place the bytes of `upload_id`; (row, True) the first time, (row, False)
    when it was already completed."""
    async with maker() as session:
        row = await _claim(session, upload_id=upload_id, user=user)
        if row.upload_status is UploadStatus.completed:
            return row, False
        fields = UploadFields(
            file_type=row.file_type,
            customer_id=row.customer_id,
            ticket_id=row.ticket_id,
            service_id=row.service_id,
            metadata=row.metadata_,
            expires_at=row.expires_at,
        )
        # Access is checked again: the user may have lost the customer or ticket meanwhile.
        await _check_access(session, fields, user)
        row.upload_status = UploadStatus.verifying
        await session.commit()
    try:
        stored = await verify.check_stored(
            storage,
            settings,
            bucket=row.bucket,
            key=row.object_key,
            filename=row.filename,
            user_id=user.id,
            sha256=row.sha256,
        )
        verify.check_declared(stored, size=row.file_size, sha256=row.sha256)
    except verify.Rejected as exc:
        await storage.delete(row.bucket, row.object_key)
        rejected = await _finish(
            maker, row, UploadStatus.rejected, rejection_reason=exc.reason.value
        )
        if exc.reason is RejectionReason.virus:
            await _audit(maker, audit_service.Action.file_rejected_virus, rejected, user, client)
        log.warning("file.direct_rejected", upload_id=row.id, reason=exc.reason.value)
        raise
    except BaseException:
        # Store or scanner unavailable: nothing was decided, the client may try again.
        await _finish(maker, row, UploadStatus.pending)
        raise
    # The bytes are already at the file's key: completing the row is what releases them.
    async with maker() as session:
        done = await files_service.record_upload(
            session,
            stored=stored,
            fields=fields,
            user=user,
            expires_at=row.expires_at,
            into=row.id,
        )
        await session.commit()
    await _audit(maker, audit_service.Action.file_uploaded, done, user, client)
    log.info("file.direct_completed", upload_id=row.id, bucket=row.bucket, size=stored.size)
    return done, True


async def _audit(
    maker: async_sessionmaker[AsyncSession],
    action: audit_service.Action,
    file: FileUpload,
    user: User,
    client: ClientInfo,
) -> None:
    async with maker() as session:
        await files_service.record_access(
            session, action, file=file, user=user, client=client, details={"via": "direct"}
        )
        await session.commit()


async def _claim(session: AsyncSession, *, upload_id: int, user: User) -> FileUpload:
    stmt = select(FileUpload).where(FileUpload.id == upload_id).with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None or row.uploaded_by != user.id:
        raise NotFound(f"Direct upload {upload_id} not found", code="upload_not_found")
    if row.upload_status is UploadStatus.verifying:
        raise Conflict("This upload is being verified; ask again shortly", code="upload_verifying")
    if row.upload_status is UploadStatus.rejected:
        raise Conflict(
            f"This upload was rejected ({row.rejection_reason}); start a new one",
            code="upload_rejected",
        )
    if row.upload_status not in (UploadStatus.pending, UploadStatus.completed):
        raise NotFound(f"Direct upload {upload_id} not found", code="upload_not_found")
    return row


async def _finish(
    maker: async_sessionmaker[AsyncSession],
    row: FileUpload,
    upload_status: UploadStatus,
    **values: object,
) -> FileUpload:
    async with maker() as session:
        current = await session.get(FileUpload, row.id, with_for_update=True)
        assert current is not None
        current.upload_status = upload_status
        for name, value in values.items():
            setattr(current, name, value)
        await session.commit()
        return current


async def expire_reservations(
    session: AsyncSession, storage: ObjectStorage, *, now: datetime, grace: timedelta
) -> int:
    """Delete the bytes of reservations never completed (`reserved_until` + `grace` passed, or
    stuck verifying by a crash) and mark their rows expired; returns how many."""
    stmt = (
        select(FileUpload)
        .where(
            FileUpload.reserved_until < now - grace,
            FileUpload.upload_status.in_([UploadStatus.pending, UploadStatus.verifying]),
        )
        .order_by(FileUpload.id)
        .limit(RESERVATION_BATCH)
        .with_for_update(skip_locked=True)
    )
    rows = list((await session.execute(stmt)).scalars())
    for row in rows:
        await storage.delete(row.bucket, row.object_key)
        row.upload_status = UploadStatus.expired
        row.reserved_until = None
    await session.commit()
    return len(rows)
