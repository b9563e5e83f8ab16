"""The statements of the hot file reads, built once per role and bound per request.

A request only binds values (the caller's customer, the time, the backups bucket, the page):
no statement is built, and SQLAlchemy finds each compiled form in its cache. Visibility is the
same rule everywhere: live (completed, not expired), and for staff no backups, and for a
customer user only its own customer's files.

A listing is one statement: the owner (customer or ticket) the caller may see, joined to a
page of its files (`LEFT JOIN LATERAL`). No row: the owner does not exist or is hidden (404);
one row without a file: an empty page. It runs unprepared (`db.UNPREPARED`): PostgreSQL plans
it for this owner each time, where a prepared statement's generic plan, made for an average
customer, read and sorted all 60,000 files of a big one (0.5 s instead of 1 ms,
`bench/scale.py`).
"""

from __future__ import annotations

import enum
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Select,
    String,
    and_,
    bindparam,
    or_,
    select,
    true,
    tuple_,
)

from filestore.auth.models import Role
from filestore.auth.principal import Actor
from filestore.customers import service as customers_service
from filestore.db import UNPREPARED
from filestore.files.models import FileUpload, UploadStatus
from filestore.settings import Settings
from filestore.tickets import service as tickets_service

BACKUP_FILE_TYPE = "backup"


class Owner(enum.Enum):
    """Whose files a listing shows."""

    customer = "customer"
    ticket = "ticket"


def visible(role: Role) -> ColumnElement[bool]:
    """The files a user of `role` sees (binds `now`, `backups_bucket`, `user_customer_id`)."""
    live = and_(
        FileUpload.upload_status == UploadStatus.completed,
        or_(
            FileUpload.expires_at.is_(None),
            FileUpload.expires_at > bindparam("now", type_=DateTime(timezone=True)),
        ),
    )
    if role is Role.admin:
        return live
    # A backup is admin-only wherever it was stored (one sent with a ticket_id lands in
    # ticket-media by the bucket rules).
    not_backup = and_(
        FileUpload.bucket != bindparam("backups_bucket", type_=String),
        FileUpload.file_type != BACKUP_FILE_TYPE,
    )
    if role is Role.staff:
        return and_(live, not_backup)
    own = FileUpload.customer_id == bindparam("user_customer_id", type_=BigInteger)
    return and_(live, not_backup, own)


def visibility_params(user: Actor, settings: Settings, now: datetime) -> dict[str, Any]:
    """The values `visible(user.role)` binds."""
    params: dict[str, Any] = {"now": now}
    if user.role is not Role.admin:
        params["backups_bucket"] = settings.minio_bucket_backups
    if user.role is Role.customer:
        params["user_customer_id"] = user.customer_id
    return params


@cache
def file_by_id(role: Role) -> Select[FileUpload]:
    """File `:file_id` if it is live and a user of `role` may see it."""
    return select(FileUpload).where(
        FileUpload.id == bindparam("file_id", type_=BigInteger), visible(role)
    )


# What a listing shows, as plain rows: building twenty ORM objects per page cost more than
# the query. The names are FileUpload's attributes, so a row reads like one.
LISTED = (
    FileUpload.id,
    FileUpload.filename,
    FileUpload.file_size,
    FileUpload.mime_type,
    FileUpload.file_type,
    FileUpload.upload_status,
    FileUpload.scan_status,
    FileUpload.created_at,
    FileUpload.md5,
    FileUpload.sha256,
    FileUpload.bucket,
    FileUpload.customer_id,
    FileUpload.ticket_id,
    FileUpload.service_id,
    FileUpload.metadata_.label("metadata_"),
    FileUpload.expires_at,
    FileUpload.uploaded_by,
)


@cache
def file_row_by_id(role: Role) -> Select[Any]:
    """File `:file_id` as a row of `LISTED`, if it is live and a user of `role` may see it."""
    return select(*LISTED).where(
        FileUpload.id == bindparam("file_id", type_=BigInteger), visible(role)
    )


@cache
def listing(owner: Owner, role: Role, *, after: bool) -> Select[Any]:
    """One page of the live files of customer or ticket `:owner_id` that a user of `role` sees,
    newest first, with `owner_id` in every row (`ix_file_uploads_customer_listing` /
    `…_ticket_listing`). Binds `limit`, `offset` (BIGINT: any offset up to 2^63-1 is a valid,
    empty page) and, with `after`, the keyset `after_created_at`, `after_id`."""
    owners = (
        customers_service.visible_id_query(role)
        if owner is Owner.customer
        else tickets_service.visible_id_query(role)
    ).subquery("owner")
    owned_by = FileUpload.customer_id if owner is Owner.customer else FileUpload.ticket_id
    page = (
        select(*LISTED)
        .where(
            owned_by == owners.c.id,
            visible(role),
            tuple_(FileUpload.created_at, FileUpload.id)
            < tuple_(
                bindparam("after_created_at", type_=DateTime(timezone=True)),
                bindparam("after_id", type_=BigInteger),
            )
            if after
            else true(),
        )
        .order_by(FileUpload.created_at.desc(), FileUpload.id.desc())
        .limit(bindparam("limit", type_=BigInteger))
        .offset(bindparam("offset", type_=BigInteger))
        .lateral("page")
    )
    return (
        select(owners.c.id.label("owner_id"), *page.c)
        .select_from(owners.outerjoin(page, true()))
        .order_by(page.c.created_at.desc(), page.c.id.desc())  # a sort of one page's rows
        .execution_options(**UNPREPARED)
    )
