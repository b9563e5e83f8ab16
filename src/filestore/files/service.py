"""File records: bucket routing, object keys, visibility, listing and deletion. No HTTP here."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth.models import Role, User
from filestore.errors import Forbidden, NotFound
from filestore.files.models import FileUpload, UploadStatus
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)

BACKUP_FILE_TYPE = "backup"
CSV_FILE_TYPE = "csv"
TEMP_FILE_TYPE = "temp"


def route_bucket(settings: Settings, *, file_type: str, ticket_id: int | None) -> str:
    """The seed's bucket rules: ticket media, CSV imports, backups, temp, else customer uploads."""
    buckets = settings.buckets
    if ticket_id is not None:
        return buckets["ticket_media"]
    if file_type == CSV_FILE_TYPE:
        return buckets["csv_imports"]
    if file_type == BACKUP_FILE_TYPE:
        return buckets["backups"]
    if file_type == TEMP_FILE_TYPE:
        return buckets["temp"]
    return buckets["customer_uploads"]


def object_key(*, customer_id: int | None, user_id: int, now: datetime) -> str:
    """`<owner>/<yyyy>/<mm>/<uuid>`: generated, never taken from the client."""
    owner = f"customers/{customer_id}" if customer_id is not None else f"users/{user_id}"
    return f"{owner}/{now:%Y}/{now:%m}/{uuid.uuid4().hex}"


def _visible_to(user: User, settings: Settings, now: datetime) -> ColumnElement[bool]:
    live = and_(
        FileUpload.upload_status == UploadStatus.completed,
        or_(FileUpload.expires_at.is_(None), FileUpload.expires_at > now),
    )
    if user.role is Role.admin:
        return live
    # A backup is admin-only wherever it was stored (one sent with a ticket_id lands in
    # ticket-media by the bucket rules).
    not_backup = and_(
        FileUpload.bucket != settings.minio_bucket_backups, FileUpload.file_type != BACKUP_FILE_TYPE
    )
    if user.role is Role.staff:
        return and_(live, not_backup)
    return and_(live, not_backup, FileUpload.customer_id == user.customer_id)


async def get_visible(
    session: AsyncSession, *, file_id: int, user: User, settings: Settings, now: datetime
) -> FileUpload:
    """The live file if `user` may see it; 404 otherwise (deleted, expired or someone else's)."""
    stmt = select(FileUpload).where(FileUpload.id == file_id, _visible_to(user, settings, now))
    file = (await session.execute(stmt)).scalar_one_or_none()
    if file is None:
        raise NotFound(f"File {file_id} not found", code="file_not_found")
    return file


async def list_visible(
    session: AsyncSession,
    *,
    user: User,
    settings: Settings,
    now: datetime,
    customer_id: int | None = None,
    ticket_id: int | None = None,
    limit: int,
    offset: int,
) -> list[FileUpload]:
    """Live files of a customer or a ticket that `user` may see, newest first."""
    stmt = (
        select(FileUpload)
        .where(
            _visible_to(user, settings, now),
            FileUpload.customer_id == customer_id if customer_id is not None else true(),
            FileUpload.ticket_id == ticket_id if ticket_id is not None else true(),
        )
        .order_by(FileUpload.created_at.desc(), FileUpload.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(stmt)).scalars())


def check_may_delete(file: FileUpload, user: User) -> None:
    """Staff and admins delete any file they see; a customer only what it uploaded itself."""
    if user.role is Role.customer and file.uploaded_by != user.id:
        raise Forbidden("Only staff can delete files you did not upload", code="forbidden_delete")


async def delete(
    session: AsyncSession, *, file: FileUpload, storage: ObjectStorage, now: datetime
) -> None:
    """Mark the row deleted (committed first, so the file is gone for everyone), then drop the
    object. If the store is down the object stays for the cleanup sweep; the file is still gone."""
    file.upload_status = UploadStatus.deleted
    file.deleted_at = now
    await session.commit()
    try:
        await storage.delete(file.bucket, file.object_key)
    except Exception as exc:
        log.warning("file.object_delete_failed", file_id=file.id, error=str(exc)[:200])
    log.info("file.deleted", file_id=file.id, bucket=file.bucket)
