"""The statements of the hot file reads, built once and bound per request.

A request only binds values (the token's claims, the time, the backups bucket, the page): no
statement is built, and SQLAlchemy finds each compiled form in its cache. Visibility is the
same rule everywhere: live (completed, not expired), and for staff no backups, and for a
customer user only its own customer's files.

The hot reads (`GET /files/{id}`, the listings, downloads) check the token and read in one
statement, one round trip: the token's user (`caller`, `auth.service.caller`: active, same
token version, login session live) joined to what the route reads, visibility decided in SQL
from the caller's role and customer (`visible_to`: the token does not carry them, and they may
have changed since it was issued). No row: the token no longer speaks for anyone (401); the
caller's row with NULL file columns: not found or not visible (404). `visible(role)` is the
same rule for a caller already loaded (the routes that write).

A listing is the caller, the owner (customer or ticket) the caller may see, and a page of its
files (`LEFT JOIN LATERAL`). A NULL owner: it does not exist or is hidden (404); an owner
without a file: an empty page. It runs unprepared (`db.UNPREPARED`): PostgreSQL plans it for
this owner each time, where a prepared statement's generic plan, made for an average customer,
read and sorted all 60,000 files of a big one (0.5 s instead of 1 ms, `bench/scale.py`).
"""

from __future__ import annotations

import enum
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    DateTime,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.selectable import LateralFromClause

from filestore.audit import service as audit_service
from filestore.auth import service as auth_service
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


def _live() -> ColumnElement[bool]:
    """A completed file that has not expired (binds `now`)."""
    return and_(
        FileUpload.upload_status == UploadStatus.completed,
        or_(
            FileUpload.expires_at.is_(None),
            FileUpload.expires_at > bindparam("now", type_=DateTime(timezone=True)),
        ),
    )


def _not_backup() -> ColumnElement[bool]:
    """Not a backup (binds `backups_bucket`): staff and customers never see one, wherever it
    was stored (one sent with a ticket_id lands in ticket-media by the bucket rules)."""
    return and_(
        FileUpload.bucket != bindparam("backups_bucket", type_=String),
        FileUpload.file_type != BACKUP_FILE_TYPE,
    )


def visible(role: Role) -> ColumnElement[bool]:
    """The files a user of `role` sees (binds `now`, `backups_bucket`, `user_customer_id`)."""
    if role is Role.admin:
        return _live()
    if role is Role.staff:
        return and_(_live(), _not_backup())
    own = FileUpload.customer_id == bindparam("user_customer_id", type_=BigInteger)
    return and_(_live(), _not_backup(), own)


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


LISTED_WIDTH = len(LISTED)


# -- the token check and the read in one statement (see the module's docstring) ---------


def visible_to(caller: CTE) -> ColumnElement[bool]:
    """`visible(role)` for the `caller` row of the same statement (binds `now`,
    `backups_bucket`)."""
    role = caller.c.role
    own = FileUpload.customer_id == caller.c.customer_id
    return and_(_live(), or_(role == Role.admin, and_(_not_backup(), or_(role == Role.staff, own))))


def _page(
    owner: Owner, caller: CTE, owner_seen: ColumnElement[bool], *, after: bool
) -> LateralFromClause:
    """A LATERAL page of owner `:owner_id`'s live files that the caller sees, newest first,
    from the keyset `after_created_at`, `after_id` when `after`; binds `limit` and `offset`
    (BIGINT). Empty unless `owner_seen` (the owner exists and the caller may see it).

    Written for PostgreSQL's estimates: the owner is `:owner_id` itself, not the owner row's
    column, so the planner knows how many files it has; and the caller's rule is one `CASE`
    on the role, which it estimates as half the rows. `visible_to`'s `role = 'admin' OR ...`
    was guessed at 1 %: 57 of a big customer's 6,000 files, so it read and sorted them all
    (11 ms, `bench/scale.py`) instead of walking the listing index newest first and stopping
    at the page's end."""
    owned_by = FileUpload.customer_id if owner is Owner.customer else FileUpload.ticket_id
    # A customer user sees its own customer's files. For a customer's listing the owner's
    # rule has made sure the owner is the caller's customer; a ticket's files are checked
    # one by one.
    own = true() if owner is Owner.customer else FileUpload.customer_id == caller.c.customer_id
    role = caller.c.role
    sees = case(
        (role == Role.admin, true()),
        (role == Role.staff, _not_backup()),
        else_=and_(_not_backup(), own),
    )
    keyset = (
        tuple_(FileUpload.created_at, FileUpload.id)
        < tuple_(
            bindparam("after_created_at", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=BigInteger),
        )
        if after
        else true()
    )
    return (
        select(*LISTED)
        .where(
            owned_by == bindparam("owner_id", type_=BigInteger),
            owner_seen,
            _live(),
            sees,
            keyset,
        )
        .order_by(FileUpload.created_at.desc(), FileUpload.id.desc())
        .limit(bindparam("limit", type_=BigInteger))
        .offset(bindparam("offset", type_=BigInteger))
        .lateral("page")
    )


def caller_params(settings: Settings, now: datetime) -> dict[str, Any]:
    """The values `visible_to` binds."""
    return {"now": now, "backups_bucket": settings.minio_bucket_backups}


@cache
def caller_file_row(*, with_session: bool) -> Select[Any]:
    """The caller and file `:file_id` as a row of `LISTED` if the caller may see it."""
    caller = auth_service.caller(with_session=with_session)
    found = and_(FileUpload.id == bindparam("file_id", type_=BigInteger), visible_to(caller))
    return select(*auth_service.caller_columns(with_session=with_session), *LISTED).select_from(
        caller.outerjoin(FileUpload, found)
    )


@cache
def caller_listing(owner: Owner, *, after: bool, with_session: bool) -> Select[Any]:
    """The caller's row, the owner `:owner_id` if the caller may see it (`owner_id`, NULL if
    not), and one page of the owner's live files that the caller sees, newest first
    (`ix_file_uploads_customer_listing` / `…_ticket_listing`). Binds `limit`, `offset` (BIGINT:
    any offset up to 2^63-1 is a valid, empty page) and, with `after`, the keyset
    `after_created_at`, `after_id`. Unprepared (the module's docstring)."""
    caller = auth_service.caller(with_session=with_session)
    owner_rule = (
        customers_service.visible_id_to
        if owner is Owner.customer
        else tickets_service.visible_id_to
    )
    owners = owner_rule(caller.c.role, caller.c.customer_id).lateral("owner")
    page = _page(owner, caller, owners.c.id.is_not(None), after=after)
    return (
        select(
            *auth_service.caller_columns(with_session=with_session),
            owners.c.id.label("owner_id"),
            *page.c,
        )
        .select_from(caller.outerjoin(owners, true()).outerjoin(page, true()))
        .order_by(page.c.created_at.desc(), page.c.id.desc())
        .execution_options(**UNPREPARED)
    )


# Where the `LISTED` columns begin in the rows of `caller_file_row` and `caller_listing`.
CALLER_WIDTH = len(auth_service.caller_columns(with_session=False))
FILE_ROW_START = CALLER_WIDTH
LISTING_START = CALLER_WIDTH + 1  # after `owner_id`


# What serving a file's bytes needs of its row (`files.download.ServedFile`).
SERVED = (
    FileUpload.id,
    FileUpload.filename,
    FileUpload.file_size,
    FileUpload.mime_type,
    FileUpload.sha256,
    FileUpload.bucket,
    FileUpload.object_key,
    FileUpload.customer_id,
)


@cache
def caller_download(*, with_session: bool, audited: bool) -> Select[Any]:
    """The caller and file `:file_id` as a row of `SERVED` if the caller may see it; with
    `audited`, the same statement also writes the download's audit event (a data-modifying CTE:
    it runs exactly once, and only when the caller and the file were both found), binding
    `action`, `client_ip`, `user_agent` and `extra` (a dict merged into the details),
    and says how many events it wrote in `audited` (0 or 1)."""
    caller = auth_service.caller(with_session=with_session)
    found = and_(FileUpload.id == bindparam("file_id", type_=BigInteger), visible_to(caller))
    target = select(*SERVED).select_from(caller).where(found).cte("target")
    columns: list[Any] = [
        *auth_service.caller_columns(with_session=with_session),
        *target.c,
    ]
    if audited:
        event = audit_service.insert_from(
            select(
                bindparam("action", type_=String),
                caller.c.id,
                bindparam("client_ip", type_=String),
                bindparam("user_agent", type_=String),
                func.jsonb_build_object(
                    literal_column("'filename'"),
                    target.c.filename,
                    literal_column("'bucket'"),
                    target.c.bucket,
                ).op("||")(bindparam("extra", type_=JSONB)),
                target.c.id,
                target.c.customer_id,
            ).select_from(caller.join(target, true()))
        ).cte("event")
        columns.append(select(func.count()).select_from(event).scalar_subquery().label("audited"))
    return select(*columns).select_from(caller.outerjoin(target, true()))
