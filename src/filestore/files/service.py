"""File records: bucket routing, object keys, who may upload what, the row of a stored upload,
visibility for the routes that write, and deletion. No HTTP here: the upload pipeline
(`upload.py`) calls these rules as the form arrives and writes the row through `record_upload`.
The hot reads, with the token check in the same statement, are `reads.py`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from filestore.audit import service as audit_service
from filestore.auth.models import Role, User
from filestore.auth.principal import Actor
from filestore.customers import service as customers_service
from filestore.errors import Forbidden, NotFound, Unprocessable, UnsupportedMediaType
from filestore.files import queries
from filestore.files.form import UploadFields
from filestore.files.models import FileUpload, ScanStatus, UploadStatus
from filestore.files.names import extension_of, sanitize_filename
from filestore.requests import NO_CLIENT, ClientInfo
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage
from filestore.tickets import service as tickets_service

log = structlog.get_logger(__name__)

BACKUP_FILE_TYPE = queries.BACKUP_FILE_TYPE
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


def _owner_prefix(customer_id: int | None, user_id: int) -> str:
    return f"customers/{customer_id}/" if customer_id is not None else f"users/{user_id}/"


def object_key(*, customer_id: int | None, user_id: int, now: datetime) -> str:
    """`<owner>/<yyyy>/<mm>/<uuid>`: generated, never taken from the client."""
    return f"{_owner_prefix(customer_id, user_id)}{now:%Y}/{now:%m}/{uuid.uuid4().hex}"


# -- uploads ----------------------------------------------------------------------------------


@dataclass
class StoredObject:
    """A complete object of an upload, waiting for its row."""

    bucket: str
    key: str
    filename: str
    mime_type: str
    size: int = 0
    md5: str = ""
    sha256: str = ""
    scan_status: ScanStatus = ScanStatus.disabled


def upload_location(
    settings: Settings, *, fields: UploadFields, user: Actor, now: datetime
) -> tuple[str, str]:
    """Bucket and a new key for an upload with the fields seen so far."""
    bucket = route_bucket(settings, file_type=fields.file_type, ticket_id=fields.ticket_id)
    key = object_key(customer_id=fields.owner_customer_id(user), user_id=user.id, now=now)
    return bucket, key


def is_placed_right(
    settings: Settings, *, fields: UploadFields, user: Actor, bucket: str, key: str
) -> bool:
    """False when fields that came after the file changed its bucket or owner."""
    right_bucket = route_bucket(settings, file_type=fields.file_type, ticket_id=fields.ticket_id)
    prefix = _owner_prefix(fields.owner_customer_id(user), user.id)
    return bucket == right_bucket and key.startswith(prefix)


def check_upload_filename(
    settings: Settings, *, part_name: str, filename: str | None, file_type: str
) -> str:
    """The sanitised name of the file part; 422 or 415 for a part the upload does not take."""
    if part_name != "file":
        raise Unprocessable(
            f"Send the file in the `file` field, not {part_name!r}", code="invalid_field"
        )
    if filename is None:
        raise Unprocessable(
            "The `file` part has no filename: send it as a file (curl: -F file=@name.csv)",
            code="file_required",
        )
    if filename.strip() == "":
        raise Unprocessable("No file was chosen", code="file_required")
    if "\x00" in filename:
        # Other control characters are replaced, but a NUL is the old trick to cut a name short.
        raise Unprocessable("The filename contains a NUL character", code="invalid_filename")
    name = sanitize_filename(filename)
    extension = extension_of(name)
    allowed = settings.allowed_file_types
    if extension not in allowed:
        raise UnsupportedMediaType(
            f"Files of type .{extension or '(none)'} are not allowed; "
            f"allowed: {', '.join(allowed)}",
            code="file_type_not_allowed",
        )
    _check_csv_name(name, file_type)
    return name


def _check_csv_name(filename: str, file_type: str) -> None:
    if file_type == CSV_FILE_TYPE and extension_of(filename) != "csv":
        raise Unprocessable("file_type csv needs a .csv file", code="invalid_field")


async def check_upload_field(
    session: AsyncSession, *, fields: UploadFields, name: str, user: Actor
) -> None:
    """The rules for a field just parsed that need the user or the database: backups are
    admin-only, the customer and the ticket exist and `user` may see them."""
    if name == "file_type":
        if fields.file_type == BACKUP_FILE_TYPE and user.role is not Role.admin:
            raise Forbidden("Only admins can upload backups", code="forbidden_backup")
    elif name == "customer_id" and fields.customer_id is not None:
        await customers_service.get_visible(session, customer_id=fields.customer_id, user=user)
    elif name == "ticket_id" and fields.ticket_id is not None:
        ticket = await tickets_service.get_visible(session, ticket_id=fields.ticket_id, user=user)
        fields.ticket_customer_id = ticket.customer_id


def check_upload_complete(fields: UploadFields, *, user: Actor, stored: StoredObject) -> None:
    """The rules that need every field and the whole file: a customer uploads only for itself,
    a ticket's customer is the file's, csv means a .csv, the client's checksum matches."""
    check_upload_owner(fields, user=user)
    # Checked again here: a file_type=csv field may come after the file (curl's order).
    _check_csv_name(stored.filename, fields.file_type)
    expected = fields.checksum_sha256
    if expected is not None and expected != stored.sha256:
        raise Unprocessable(
            f"checksum_sha256 does not match: the server computed {stored.sha256}",
            code="checksum_mismatch",
        )


def check_upload_owner(fields: UploadFields, *, user: Actor) -> None:
    """The rules that need every field: a customer uploads only for itself, a ticket's
    customer is the file's (resumable uploads check these at creation, before any byte)."""
    if user.role is Role.customer and fields.owner_customer_id(user) != user.customer_id:
        raise Forbidden("Customers can only upload their own files", code="forbidden_owner")
    if fields.customer_id is not None and fields.ticket_customer_id is not None:
        if fields.customer_id != fields.ticket_customer_id:
            raise Unprocessable(
                f"Ticket {fields.ticket_id} belongs to another customer",
                code="ticket_customer_mismatch",
            )


def upload_expiry(settings: Settings, *, fields: UploadFields, now: datetime) -> datetime | None:
    """The given `expires_at`; temp files without one expire after TEMP_FILE_TTL_HOURS."""
    if fields.file_type == TEMP_FILE_TYPE and fields.expires_at is None:
        return now + timedelta(hours=settings.temp_file_ttl_hours)
    return fields.expires_at


async def record_upload(
    session: AsyncSession,
    *,
    stored: StoredObject,
    fields: UploadFields,
    user: Actor,
    expires_at: datetime | None,
    into: int | None = None,
) -> FileUpload:
    """The `completed` row of a verified upload (flushed; the caller commits): a new one, or
    row `into` that tracked the upload until now (`uploading`, `verifying`)."""
    row = (
        FileUpload() if into is None else await session.get(FileUpload, into, with_for_update=True)
    )
    if row is None:
        raise NotFound(f"Upload {into} not found", code="upload_not_found")
    row.filename = stored.filename
    row.bucket = stored.bucket
    row.object_key = stored.key
    row.file_size = stored.size
    row.mime_type = stored.mime_type
    row.file_type = fields.file_type
    row.md5 = stored.md5
    row.sha256 = stored.sha256
    row.upload_status = UploadStatus.completed
    row.customer_id = fields.owner_customer_id(user)
    row.ticket_id = fields.ticket_id
    row.service_id = fields.service_id
    row.metadata_ = fields.metadata
    row.expires_at = expires_at
    row.uploaded_by = user.id
    row.scan_status = stored.scan_status
    row.rejection_reason = None
    row.reserved_until = None
    if into is None:
        session.add(row)
    await session.flush()
    return row


# -- reading and deleting ---------------------------------------------------------------------


async def get_visible(
    session: AsyncSession, *, file_id: int, user: Actor, settings: Settings, now: datetime
) -> FileUpload:
    """The live file if `user` may see it; 404 otherwise (deleted, expired or someone else's)."""
    params = {"file_id": file_id, **queries.visibility_params(user, settings, now)}
    file = (await session.execute(queries.file_by_id(user.role), params)).scalar_one_or_none()
    if file is None:
        raise NotFound(f"File {file_id} not found", code="file_not_found")
    return file


@dataclass(frozen=True, slots=True)
class ServedFile:
    """What serving a file's bytes needs of its row (`files.queries.SERVED`): a
    `files.download.Servable`."""

    id: int
    filename: str
    file_size: int
    mime_type: str
    sha256: str
    bucket: str
    object_key: str
    customer_id: int | None


def check_may_delete(file: FileUpload, user: User) -> None:
    """Staff and admins delete any file they see; a customer only what it uploaded itself."""
    if user.role is Role.customer and file.uploaded_by != user.id:
        raise Forbidden("Only staff can delete files you did not upload", code="forbidden_delete")


async def record_access(
    session: AsyncSession,
    action: audit_service.Action,
    *,
    file: FileUpload | ServedFile,
    user: Actor,
    client: ClientInfo,
    details: dict[str, Any] | None = None,
    read_session: bool = False,
) -> None:
    """An audit event about `file`: who, from where, which file and whose. In the caller's
    transaction; with `read_session` (an autocommit `deps.ReadSessionDep`), written at once by
    one Core INSERT (`audit.service.record_now`)."""
    who = audit_service.Who(client, actor_id=user.id, file_id=file.id, customer_id=file.customer_id)
    record = audit_service.record_now if read_session else audit_service.record
    await record(
        session, action, who, {"filename": file.filename, "bucket": file.bucket, **(details or {})}
    )


async def record_access_at_once(
    connection: AsyncConnection,
    action: audit_service.Action,
    *,
    file: FileUpload | ServedFile,
    user: Actor,
    client: ClientInfo,
    details: dict[str, Any] | None = None,
) -> None:
    """`record_access` on a connection in autocommit (`state.AppState.read_connection`):
    written by one Core INSERT, then logged."""
    who = audit_service.Who(client, actor_id=user.id, file_id=file.id, customer_id=file.customer_id)
    details = {"filename": file.filename, "bucket": file.bucket, **(details or {})}
    await audit_service.record_at_once(connection, action, who, details)


async def delete(
    session: AsyncSession,
    *,
    file: FileUpload,
    storage: ObjectStorage,
    now: datetime,
    user: User,
    client: ClientInfo = NO_CLIENT,
) -> None:
    """Mark the row deleted (committed first, so the file is gone for everyone), then drop the
    object. If the store is down the object stays for the cleanup sweep; the file is still gone.

    The row changes only if it is still `completed`: of concurrent deletes of one file exactly
    one wins, the others find it gone (404), and the object is deleted once."""
    won = (
        await session.execute(
            update(FileUpload)
            .where(FileUpload.id == file.id, FileUpload.upload_status == UploadStatus.completed)
            .values(upload_status=UploadStatus.deleted, deleted_at=now)
            .returning(FileUpload.id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if won is None:
        raise NotFound(f"File {file.id} not found", code="file_not_found")
    file.upload_status = UploadStatus.deleted
    file.deleted_at = now
    await record_access(
        session, audit_service.Action.file_deleted, file=file, user=user, client=client
    )
    await session.commit()
    try:
        await storage.delete(file.bucket, file.object_key)
    except Exception as exc:
        log.warning("file.object_delete_failed", file_id=file.id, error=str(exc)[:200])
    log.info("file.deleted", file_id=file.id, bucket=file.bucket)
