"""The last byte of a resumable upload: the same verification as every other way in, then the row.

Hash state cannot outlive a request (hashlib objects cannot be stored), and the bytes may have
arrived through several API processes, so the complete object is read back once from the store
(`files/verify.py`: size, MD5 + SHA-256, sniffing, virus scan), unless this process saw every
byte in order and hashed it on the way (`running.py`; scanning off). The `Upload-Metadata`
fields are checked again with the user as they are now: a user deactivated, or who lost sight
of the customer, since creation loses the upload. Refused bytes are deleted and the upload is
marked `rejected` with the reason; accepted ones get their `file_uploads` row (the same JSON as
`POST /files/upload`) in the same transaction that marks the upload `completed`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore import metrics
from filestore.audit import service as audit_service
from filestore.auth.models import User
from filestore.errors import FilestoreError, NotFound
from filestore.files import containers, verify
from filestore.files import service as files_service
from filestore.files.models import FileUpload, RejectionReason, ScanStatus
from filestore.files.names import extension_of
from filestore.files.service import StoredObject
from filestore.files.tus import service as tus_service
from filestore.files.tus.models import TusStatus, TusUpload
from filestore.files.tus.running import RunningHash
from filestore.requests import NO_CLIENT, ClientInfo
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)


async def finish(
    maker: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    settings: Settings,
    *,
    upload: TusUpload,
    now: datetime,
    hashes: RunningHash | None = None,
    client: ClientInfo = NO_CLIENT,
) -> FileUpload:
    """Verify the complete object and write its row; on refusal delete it and re-raise.
    `hashes`, when they cover every byte, stand in for reading the object back."""
    owner: int | None = None
    try:
        async with maker() as session:
            user = await session.get(User, upload.user_id)
            if user is None or not user.is_active:
                raise NotFound(f"Upload {upload.id} not found", code="upload_not_found")
            fields, filename = tus_service.parse_fields(settings, upload.upload_metadata, now=now)
            await tus_service.check_fields(session, fields=fields, user=user)
            owner = fields.owner_customer_id(user)
        if hashes is not None and hashes.offset == upload.upload_length:
            stored = StoredObject(
                bucket=upload.bucket,
                key=upload.object_key,
                filename=filename,
                mime_type=verify.sniff_type(bytes(hashes.head), filename),
                size=hashes.offset,
                md5=hashes.hasher.md5,
                sha256=hashes.hasher.sha256,
                scan_status=ScanStatus.disabled,
            )
            # read_back checks the container itself; bytes hashed on the way in need it here.
            await containers.check_stored(
                storage,
                stored.bucket,
                stored.key,
                size=stored.size,
                extension=extension_of(filename),
            )
        else:
            stored = await verify.read_back(
                storage,
                settings,
                bucket=upload.bucket,
                key=upload.object_key,
                filename=filename,
                user_id=upload.user_id,
            )
        files_service.check_upload_complete(fields, user=user, stored=stored)
        async with maker() as session:
            row = await files_service.record_upload(
                session,
                stored=stored,
                fields=fields,
                user=user,
                expires_at=files_service.upload_expiry(settings, fields=fields, now=now),
            )
            await files_service.record_access(
                session,
                audit_service.Action.file_uploaded,
                file=row,
                user=user,
                client=client,
                details={"size": row.file_size, "sha256": row.sha256, "via": "tus"},
            )
            tracked = await session.get(TusUpload, upload.id, populate_existing=True)
            assert tracked is not None
            tracked.status = TusStatus.completed
            tracked.file_id = row.id
            tracked.lock_token = None
            tracked.locked_until = None
            await session.commit()
    except FilestoreError as exc:
        if exc.status_code < 500:
            audit = None
            if verify.rejection_of(exc) is RejectionReason.virus:
                who = audit_service.Who(client, actor_id=upload.user_id, customer_id=owner)
                audit = (who, _virus_details(upload, exc))
            await _reject(maker, storage, upload=upload, error=exc, audit=audit)
        # A 503 (scanner or store away) keeps the object: the client retries the last PATCH.
        raise
    metrics.UPLOADS.labels(bucket=row.bucket, outcome="stored").inc()
    metrics.UPLOAD_BYTES.inc(row.file_size)
    log.info("tus.completed", upload_id=upload.id, file_id=row.id, size=row.file_size)
    return row


async def _reject(
    maker: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    *,
    upload: TusUpload,
    error: FilestoreError,
    audit: tuple[audit_service.Who, dict[str, Any]] | None = None,
) -> None:
    """Delete the refused object and record why (the client reads it from GET /files/tus/{id});
    a virus is also an audit event, as for a form upload, in the same transaction."""
    try:
        await asyncio.shield(storage.delete(upload.bucket, upload.object_key))
    except Exception as exc:
        log.warning("tus.reject_delete_failed", upload_id=upload.id, error=str(exc)[:200])
    async with maker() as session:
        tracked = await session.get(TusUpload, upload.id, populate_existing=True)
        if tracked is not None:
            tracked.status = TusStatus.rejected
            tracked.rejection_code = error.code
            tracked.rejection_detail = str(error.message)[:1000]
            tracked.lock_token = None
            tracked.locked_until = None
        if audit is not None:
            who, details = audit
            await audit_service.record(
                session, audit_service.Action.file_rejected_virus, who, details
            )
        await session.commit()
    metrics.UPLOADS.labels(bucket=upload.bucket, outcome=error.code).inc()
    log.info("tus.rejected", upload_id=upload.id, code=error.code)


def _virus_details(upload: TusUpload, found: FilestoreError) -> dict[str, Any]:
    """The same details as a form upload's event (`files/upload.py`), and which tus upload."""
    filename = (upload.upload_metadata or {}).get("filename")
    return {
        "filename": filename,
        "reason": str(found.message)[:200],
        "via": "tus",
        "upload_id": upload.id,
    }
