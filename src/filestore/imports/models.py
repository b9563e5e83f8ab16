"""The imports' own tables.

`account_invites`: the customer users an import created without a password, each to be sent
one set-your-password link (`validation_rules.send_invites`); written and read only by
`imports/invites.py`. `import_updates`: what an `on_duplicate` update changed, with the values
it replaced (written by `imports/writer.py`, so an update can be told and undone).
`import_mappings`: saved mapping templates that an import names instead of its mapping.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, String, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from filestore.db import Base, TimestampMixin


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


class ImportUpdate(Base):
    """One customer an import updated: its fields as they were before (`previous`) and its
    `updated_at` right after, committed with the batch."""

    __tablename__ = "import_updates"

    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("background_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    previous: Mapped[dict[str, Any]] = mapped_column(JSONB)


class ImportMapping(TimestampMixin, Base):
    """A saved mapping template: column → field, named for later imports."""

    __tablename__ = "import_mappings"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    mapping: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
