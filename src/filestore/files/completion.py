"""The row of a form upload verified whole before it was stored: one statement, one round trip.

A file whose part ended within the sniffed head (`upload.read_head`, at most 8 KiB) is sized,
hashed, sniffed, scanned and checked against every field in memory, before anything is
written. Its `file_uploads` row is then written once, `completed` (as a tus upload's is, at
its last byte), with its `file.uploaded` audit event: an `INSERT ... RETURNING` whose event
`INSERT` rides in a CTE. A single statement is atomic on its own, so it runs without BEGIN and
COMMIT (the autocommit read session): both rows or neither. The statement is built once; each
upload only binds values, so SQLAlchemy's compiled cache and psycopg's prepared statement
serve it.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.audit import service as audit_service
from filestore.audit.models import AuditEvent
from filestore.auth.models import User
from filestore.files import queries
from filestore.files.form import UploadFields
from filestore.files.models import FileUpload, UploadStatus
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
_EVENT_COLUMNS = ("action", "actor_id", "target_user_id", "client_ip", "user_agent", "details")
_EVENT = "event_"  # the prefix of the event's parameters


@cache
def completed_insert() -> Select[Any]:
    """The completed file row and its audit event; returns the row as `queries.LISTED`."""
    files = FileUpload.__table__
    events = AuditEvent.__table__
    file_row = (
        insert(FileUpload)
        .values(
            {files.c[name]: bindparam(name, type_=files.c[name].type) for name in _FILE_COLUMNS}
        )
        .returning(*queries.LISTED)
        .cte("file_row")
    )
    event_values = [bindparam(_EVENT + name, type_=events.c[name].type) for name in _EVENT_COLUMNS]
    event = (
        insert(AuditEvent)
        .from_select(
            [*_EVENT_COLUMNS, "file_id", "customer_id"],
            select(*event_values, file_row.c.id, file_row.c.customer_id),
        )
        .cte("event")
    )
    return select(file_row).add_cte(event)


async def record(
    session: AsyncSession,
    *,
    stored: StoredObject,
    fields: UploadFields,
    user: User,
    expires_at: datetime | None,
    client: ClientInfo,
) -> Row[Any]:
    """Write the completed row of `stored` and its audit event, then log the event; the row
    as `queries.LISTED`. On an autocommit session (`AppState.reader`) this is the commit; on a
    session in a transaction, its commit ends it (a savepoint in the fast tier)."""
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
    row: Row[Any] = (await (await session.connection()).execute(completed_insert(), params)).one()
    await session.commit()
    audit_service.log_event(
        audit_service.Action.file_uploaded,
        audit_service.Who(client, actor_id=user.id, file_id=row.id, customer_id=customer_id),
    )
    return row
