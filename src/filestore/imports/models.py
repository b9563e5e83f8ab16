"""`account_invites`: the customer users an import created without a password, each to be sent
one set-your-password link (`validation_rules.send_invites`). Written and read only by
`imports/invites.py`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from filestore.db import Base


class AccountInvite(Base):
    """Inserted in the same transaction as its user; `sent_at` or `error` once mailed."""

    __tablename__ = "account_invites"

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("background_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(300))
