"""The hot file reads: the token's check and the read in one statement (`queries.caller_*`),
one round trip for `GET /files/{id}`, the listings and downloads (with their audit event). No
HTTP here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from filestore.audit import service as audit_service
from filestore.auth import service as auth_service
from filestore.auth.principal import Caller
from filestore.auth.security import AccessClaims
from filestore.db import UNPREPARED_OPTION
from filestore.db_direct import DirectStatement
from filestore.errors import NotFound
from filestore.files import queries
from filestore.files.service import ServedFile
from filestore.pagination import Keyset
from filestore.requests import ClientInfo
from filestore.settings import Settings


def _page_params(owner_id: int, limit: int, offset: int, after: Keyset | None) -> dict[str, Any]:
    """What a listing statement binds for its page (`queries.caller_listing`)."""
    params: dict[str, Any] = {"owner_id": owner_id, "limit": limit, "offset": offset}
    if after is not None:
        params["after_created_at"], params["after_id"] = after.created_at, after.id
    return params


# -- the token check and the read in one statement (`files.queries.caller_*`) -----------------


@cache
def _direct(statement: Select[Any]) -> DirectStatement:
    """`statement` run through `db_direct` (the hot reads' statements are built once, so
    this is one per statement); unprepared when the statement says so (`db.UNPREPARED`)."""
    unprepared = statement.get_execution_options().get(UNPREPARED_OPTION, False)
    return DirectStatement(statement, prepare=False if unprepared else None)


def _first(rows: list[Any]) -> Any | None:
    return rows[0] if rows else None


def _caller(row: Any | None) -> Caller:
    """The caller of a `caller_*` statement's row; 401 when the token no longer speaks for
    anyone (no row)."""
    caller = None if row is None else auth_service.caller_of(row)
    if caller is None:
        raise auth_service.token_refused()
    return caller


async def read_visible_row(
    connection: AsyncConnection,
    claims: AccessClaims,
    *,
    file_id: int,
    settings: Settings,
    now: datetime,
) -> tuple[Caller, Any]:
    """The token's user and file `file_id` as a row of `queries.LISTED` (no ORM object), in
    one statement: 401 if the token no longer speaks for anyone, else 404 if the file is not
    live or not the caller's to see."""
    params = {
        "file_id": file_id,
        **auth_service.token_params(claims),
        **queries.caller_params(settings, now),
    }
    stmt = queries.caller_file_row(with_session=claims.session_id is not None)
    row = _first(await _direct(stmt).rows(connection, params))
    caller = _caller(row)
    if row is None or row.id is None:
        raise NotFound(f"File {file_id} not found", code="file_not_found")
    return caller, row


async def read_listing(
    connection: AsyncConnection,
    claims: AccessClaims,
    owner: queries.Owner,
    owner_id: int,
    *,
    settings: Settings,
    now: datetime,
    limit: int,
    offset: int,
    after: Keyset | None = None,
) -> tuple[Caller, list[Any]]:
    """The token's user and the live files of a customer or a ticket that it may see, newest
    first (rows of `queries.LISTED`), from just after the `after` row if given: one statement,
    one round trip. 401 if the token no longer speaks for anyone; 404 when the customer or
    ticket does not exist or the caller may not see it."""
    params = {
        **_page_params(owner_id, limit, offset, after),
        **auth_service.token_params(claims),
        **queries.caller_params(settings, now),
    }
    stmt = queries.caller_listing(
        owner, after=after is not None, with_session=claims.session_id is not None
    )
    rows = await _direct(stmt).rows(connection, params)
    caller = _caller(_first(rows))
    if rows[0].owner_id is None:
        if owner is queries.Owner.customer:
            raise NotFound(f"Customer {owner_id} not found", code="customer_not_found")
        raise NotFound(f"Ticket {owner_id} not found", code="ticket_not_found")
    start = queries.LISTING_START  # the file's id, NULL in an owner's row without files
    return caller, [row for row in rows if row[start] is not None]


@dataclass(frozen=True)
class AccessEvent:
    """The audit event a read writes in its own statement: what, from where, and details
    beyond the file's name and bucket."""

    action: audit_service.Action
    client: ClientInfo
    details: dict[str, Any] | None = None


async def read_served(
    connection: AsyncConnection,
    claims: AccessClaims,
    *,
    file_id: int,
    settings: Settings,
    now: datetime,
    event: AccessEvent | None = None,
) -> tuple[Caller, ServedFile]:
    """The token's user and what serving file `file_id` needs, in one statement (401, else
    404 as `get_visible`); with `event`, the same statement writes the audit event (it is
    committed when the statement returns: `connection` is in autocommit) and it is logged
    once, after."""
    params: dict[str, Any] = {
        "file_id": file_id,
        **auth_service.token_params(claims),
        **queries.caller_params(settings, now),
    }
    if event is not None:
        agent = event.client.user_agent
        params |= {
            "action": event.action.value,
            "client_ip": event.client.ip,
            "user_agent": agent[:300] if agent else None,
            "extra": event.details or {},
        }
    stmt = queries.caller_download(
        with_session=claims.session_id is not None, audited=event is not None
    )
    row = _first(await _direct(stmt).rows(connection, params))
    caller = _caller(row)
    if row is None or row.id is None:
        raise NotFound(f"File {file_id} not found", code="file_not_found")
    served = ServedFile(
        row.id,
        row.filename,
        row.file_size,
        row.mime_type,
        row.sha256,
        row.bucket,
        row.object_key,
        row.customer_id,
    )
    if event is not None and row.audited:
        who = audit_service.Who(
            event.client, actor_id=caller.id, file_id=served.id, customer_id=served.customer_id
        )
        audit_service.log_written(event.action, who)
    return caller, served
