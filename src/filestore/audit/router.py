"""`GET /audit-events` (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from filestore.audit import service as audit_service
from filestore.audit.schemas import AuditEventOut
from filestore.deps import AdminUser, SessionDep
from filestore.errors import ALWAYS, error_responses
from filestore.schemas import DbId, SearchText

router = APIRouter(
    prefix="/audit-events", tags=["audit"], responses=error_responses(401, 403, 422, *ALWAYS)
)


@router.get("", response_model=list[AuditEventOut])
async def list_audit_events(
    session: SessionDep,
    _: AdminUser,
    actor_id: Annotated[DbId | None, Query()] = None,
    target_user_id: Annotated[DbId | None, Query()] = None,
    action: Annotated[SearchText | None, Query(examples=["login.failure"])] = None,
    file_id: Annotated[DbId | None, Query(description="Events about this file")] = None,
    customer_id: Annotated[
        DbId | None, Query(description="Events about this customer's files")
    ] = None,
    since: datetime | None = Query(default=None, description="ISO 8601; events at or after it"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> Any:
    """Audit events, newest first: logins, lockouts, refresh reuse, password and user changes,
    and file access (uploaded, downloaded, deleted, link issued, rejected for a virus)."""
    return await audit_service.list_events(
        session,
        actor_id=actor_id,
        target_user_id=target_user_id,
        action=action,
        since=since,
        limit=limit,
        offset=offset,
        file_id=file_id,
        customer_id=customer_id,
    )
