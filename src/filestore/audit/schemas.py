"""Response body of `GET /audit-events`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from filestore.schemas import Schema


class AuditEventOut(Schema):
    id: int
    created_at: datetime
    action: str
    actor_id: int | None
    target_user_id: int | None
    client_ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    file_id: int | None = None
    customer_id: int | None = None
