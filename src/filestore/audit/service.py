"""Recording and listing audit events. No secrets ever go in: callers pass ids, reasons and
field names, never passwords or tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def record(
    session: AsyncSession,
    *,
    action: Action,
    client: ClientInfo = NO_CLIENT,
    actor_id: int | None = None,
    target_user_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an event to the session's transaction (it commits or rolls back with the action)."""
    session.add(
        AuditEvent(
            action=action.value,
            actor_id=actor_id,
            target_user_id=target_user_id,
            client_ip=client.ip,
            user_agent=(client.user_agent or None) and client.user_agent[:300],
            details=details or {},
        )
    )
    log.info(
        f"audit.{action.value}",
        actor_id=actor_id,
        target_user_id=target_user_id,
        client_ip=client.ip,
    )


async def list_events(
    session: AsyncSession,
    *,
    actor_id: int | None,
    target_user_id: int | None,
    action: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> list[AuditEvent]:
    """Newest first."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if target_user_id is not None:
        stmt = stmt.where(AuditEvent.target_user_id == target_user_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    return list((await session.execute(stmt)).scalars())
