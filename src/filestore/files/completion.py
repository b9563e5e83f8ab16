"""The row of a form upload verified whole before it was stored: one statement, one round trip.

A file whose part ended within the sniffed head (`multipart.read_head`, at most 8 KiB) is sized,
hashed, sniffed, scanned and checked against every field in memory, before anything is
written. Its `file_uploads` row is then written once, `completed` (as a tus upload's is, at
its last byte), with its `file.uploaded` audit event: an `INSERT ... RETURNING` whose event
`INSERT` rides in a CTE. A single statement is atomic on its own, so it runs without BEGIN and
COMMIT (the autocommit read session): both rows or neither. The statement is built once; each
upload only binds values, so SQLAlchemy's compiled cache and psycopg's prepared statement
serve it. It returns only the id and `created_at`: the answer holds the values the upload sent
(`CompletedFile`), as the ORM row of a streamed upload does, so the JSON is the same either way
(a jsonb round trip would reorder the metadata's keys, and PostgreSQL gives `expires_at` back
in UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.audit import service as audit_service
from filestore.audit.models import AuditEvent
from filestore.auth.principal import Actor
from filestore.db_direct import DirectStatement
from filestore.files.form import UploadFields
from filestore.files.models import FileUpload, ScanStatus, UploadStatus
from filestore.files.service import StoredObject
from filestore.requests import ClientInfo

# The columns the statement sets, by their table names (`metadata` is `metadata_` in Python).
_FILE_COLUMNS = (
    "filename",
    "bucket",
    "object_key",
    "file_size",
    "mime_type",
    "file_type",
    "md5",
    "sha256",
    "upload_status",
    "customer_id",
    "ticket_id",
    "service_id",
    "metadata",
    "expires_at",
    "uploaded_by",
    "scan_status",
)
_EVENT_COLUMNS = (
    "action",
    "actor_id",
    "target_user_id",
    "client_ip",
    "user_agent",
    "details",
    "customer_id",
)
_EVENT = "event_"  # the prefix of the event's parameters


@dataclass(frozen=True, slots=True)
class CompletedFile:
    """A file row as written: the attributes of `queries.LISTED` (what `render` and the
    metrics read), PostgreSQL's id and `created_at`, the rest as the upload sent them."""

    id: int
    filename: str
    file_size: int
    mime_type: str
    file_type: str
    upload_status: UploadStatus
    scan_status: ScanStatus
    created_at: datetime
    md5: str
    sha256: str
    bucket: str
    customer_id: int | None
    ticket_id: int | None
    service_id: int | None
    metadata_: dict[str, Any]
    expires_at: datetime | None
    uploaded_by: int | None


@cache
def completed_insert() -> Select[Any]:
    """The completed file row and its audit event; returns the row's id and `created_at`."""
    files = FileUpload.__table__
    events = AuditEvent.__table__
    file_row = (
        insert(FileUpload)
        .values(
            {files.c[name]: bindparam(name, type_=files.c[name].type) for name in _FILE_COLUMNS}
        )
        .returning(FileUpload.id, FileUpload.created_at)
        .cte("file_row")
    )
    event_values = [bindparam(_EVENT + name, type_=events.c[name].type) for name in _EVENT_COLUMNS]
    event = (
        insert(AuditEvent)
        .from_select([*_EVENT_COLUMNS, "file_id"], select(*event_values, file_row.c.id))
        .cte("event")
    )
    return select(file_row.c.id, file_row.c.created_at).add_cte(event)


@cache
def _direct_insert() -> DirectStatement:
    """`completed_insert` run without SQLAlchemy's execution layer (`db_direct`), in the
    session's transaction."""
    return DirectStatement(completed_insert())


async def record(
    session: AsyncSession,
    *,
    stored: StoredObject,
    fields: UploadFields,
    user: Actor,
    expires_at: datetime | None,
    client: ClientInfo,
) -> CompletedFile:
    """Write the completed row of `stored` and its audit event, then log the event. On an
    autocommit session (`AppState.reader`) the statement is its own commit; on a session in a
    transaction, the commit here ends it (a savepoint in the fast tier)."""
    customer_id = fields.owner_customer_id(user)
    who = audit_service.Who(client, actor_id=user.id, customer_id=customer_id)
    details = {
        "filename": stored.filename,
        "bucket": stored.bucket,
        "size": stored.size,
        "sha256": stored.sha256,
    }
    event = audit_service.event_values(audit_service.Action.file_uploaded, who, details)
    params: dict[str, Any] = {
        "filename": stored.filename,
        "bucket": stored.bucket,
        "object_key": stored.key,
        "file_size": stored.size,
        "mime_type": stored.mime_type,
        "file_type": fields.file_type,
        "md5": stored.md5,
        "sha256": stored.sha256,
        "upload_status": UploadStatus.completed,
        "customer_id": customer_id,
        "ticket_id": fields.ticket_id,
        "service_id": fields.service_id,
        "metadata": fields.metadata,
        "expires_at": expires_at,
        "uploaded_by": user.id,
        "scan_status": stored.scan_status,
        **{_EVENT + name: event[name] for name in _EVENT_COLUMNS},
    }
    [(file_id, created_at)] = await _direct_insert().rows(await session.connection(), params)
    await session.commit()
    audit_service.log_event(
        audit_service.Action.file_uploaded,
        audit_service.Who(client, actor_id=user.id, file_id=file_id, customer_id=customer_id),
    )
    return CompletedFile(
        id=file_id,
        filename=stored.filename,
        file_size=stored.size,
        mime_type=stored.mime_type,
        file_type=fields.file_type,
        upload_status=UploadStatus.completed,
        scan_status=stored.scan_status,
        created_at=created_at,
        md5=stored.md5,
        sha256=stored.sha256,
        bucket=stored.bucket,
        customer_id=customer_id,
        ticket_id=fields.ticket_id,
        service_id=fields.service_id,
        metadata_=fields.metadata,
        expires_at=expires_at,
        uploaded_by=user.id,
    )
