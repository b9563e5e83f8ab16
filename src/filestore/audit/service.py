"""Recording and listing audit events. No secrets ever go in: callers pass ids, reasons and
field names, never passwords or tokens.

An event is a row in the caller's transaction; its log line is written only once that
transaction committed (a session event), so an action that rolled back never logs as done.
The routes that only read (autocommit read session, no transaction) write theirs at once with
one Core INSERT (`record_now`) and log it after it returned.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Select, event, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.dml import ReturningInsert

from filestore.audit.models import AuditEvent
from filestore.requests import NO_CLIENT, ClientInfo

log = structlog.get_logger(__name__)


class Action(enum.StrEnum):
    login_success = "login.success"
    login_failure = "login.failure"
    login_locked = "login.locked"
    refresh_reuse_detected = "refresh.reuse_detected"
    logout = "logout"
    password_changed = "password.changed"
    password_reset_issued = "password.reset_issued"
    password_reset = "password.reset"
    user_created = "user.created"
    user_updated = "user.updated"
    user_deactivated = "user.deactivated"
    user_reactivated = "user.reactivated"
    role_changed = "user.role_changed"
    setup_completed = "setup.completed"
    import_undo_requested = "import.undo_requested"
    # Written by the undo job itself (`imports/undo.py`), when it has finished.
    import_undone = "import.undone"
    file_uploaded = "file.uploaded"
    file_downloaded = "file.downloaded"
    file_deleted = "file.deleted"
    file_link_issued = "file.link_issued"
    file_rejected_virus = "file.rejected_virus"


@dataclass(frozen=True)
class Who:
    """The parties of an event: where the request came from, who acted, on whom."""

    client: ClientInfo = NO_CLIENT
    actor_id: int | None = None
    target_user_id: int | None = None
    # The file an event is about, and its customer (file access events).
    file_id: int | None = None
    customer_id: int | None = None

    @classmethod
    def own(cls, user_id: int, client: ClientInfo) -> Who:
        """A user acting on their own account."""
        return cls(client, actor_id=user_id, target_user_id=user_id)


_PENDING_LOG = "audit.pending_log"


async def record(
    session: AsyncSession, action: Action, who: Who, details: dict[str, Any] | None = None
) -> None:
    """Add an event to the session's transaction (it commits or rolls back with the action);
    its log line follows the commit."""
    row = AuditEvent(**_values(action, who, details))
    session.add(row)
    session.info.setdefault(_PENDING_LOG, []).append((row, action, who))


def _values(action: Action, who: Who, details: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "action": action.value,
        "actor_id": who.actor_id,
        "target_user_id": who.target_user_id,
        "client_ip": who.client.ip,
        "user_agent": (who.client.user_agent or None) and who.client.user_agent[:300],
        "details": details or {},
        "file_id": who.file_id,
        "customer_id": who.customer_id,
    }


def event_values(action: Action, who: Who, details: dict[str, Any] | None) -> dict[str, Any]:
    """An event's column values, for a caller that writes it in a statement of its own (a
    form upload's completed row and its event in one INSERT: `files/completion.py`); it logs
    the event with `log_event` once that statement returned."""
    return _values(action, who, details)


def log_event(action: Action, who: Who) -> None:
    """The log line of an event written (and committed) by the caller's own statement."""
    _log(action, who)


_INSERT = insert(AuditEvent)


async def record_now(
    session: AsyncSession, action: Action, who: Who, details: dict[str, Any] | None = None
) -> None:
    """Write an event at once and log it, for a read session (autocommit, `deps.ReadSessionDep`):
    one Core INSERT, no ORM object or flush. Not for a session in a transaction (the event
    would log before it commits): use `record` there."""
    await (await session.connection()).execute(_INSERT, _values(action, who, details))
    # No COMMIT is sent in autocommit; where the session is bound to an outer transaction
    # (the fast tier), this ends its savepoint, as it would an ORM flush's.
    await session.commit()
    _log(action, who)


def insert_from(rows: Select[Any]) -> ReturningInsert[Any]:
    """An INSERT of the events `rows` select (the columns of `_values`, in its order, but
    `target_user_id`), returning their ids: for a statement that writes its event in a
    data-modifying CTE, together with what it reads (`files.queries.caller_download`). Whoever
    runs it logs each written event with `log_written`."""
    columns = ["action", "actor_id", "client_ip", "user_agent", "details", "file_id", "customer_id"]
    return insert(AuditEvent).from_select(columns, rows).returning(AuditEvent.id)


def log_written(action: Action, who: Who) -> None:
    """The log line of an event written outside `record` and `record_now`, once it is
    written."""
    _log(action, who)


def _log(action: Action, who: Who) -> None:
    log.info(
        f"audit.{action.value}",
        actor_id=who.actor_id,
        target_user_id=who.target_user_id,
        file_id=who.file_id,
        client_ip=who.client.ip,
    )


@event.listens_for(Session, "after_commit")
def _log_committed(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the transaction may still roll back
        return
    for row, action, who in session.info.pop(_PENDING_LOG, []):
        # Added inside a savepoint that rolled back: the row is gone, so is its line.
        if inspect(row).persistent:
            _log(action, who)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING_LOG, None)


async def list_events(
    session: AsyncSession,
    *,
    actor_id: int | None,
    target_user_id: int | None,
    action: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
    file_id: int | None = None,
    customer_id: int | None = None,
) -> list[AuditEvent]:
    """Newest first."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if target_user_id is not None:
        stmt = stmt.where(AuditEvent.target_user_id == target_user_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if file_id is not None:
        stmt = stmt.where(AuditEvent.file_id == file_id)
    if customer_id is not None:
        stmt = stmt.where(AuditEvent.customer_id == customer_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    return list((await session.execute(stmt)).scalars())
