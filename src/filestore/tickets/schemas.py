"""Request and response bodies of `/tickets`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from filestore.schemas import DbId, Schema, StrictInput

TicketStatus = Literal["open", "pending", "resolved", "closed"]


class TicketCreate(StrictInput):
    customer_id: DbId | None = Field(
        default=None, description="Required for staff; a customer's own by default"
    )
    subject: str = Field(min_length=1, max_length=255)
    status: TicketStatus = "open"


class TicketOut(Schema):
    id: int
    customer_id: int
    subject: str
    status: str
    created_at: datetime
