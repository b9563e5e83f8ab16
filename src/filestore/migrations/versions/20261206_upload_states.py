"""Upload states for uploads that arrive in more than one request (direct, resumable).

Revision ID: 20261206_upload_states
Revises: 20261206_file_expiry_range
Create Date: 2026-12-06 01:00:00

`pending` (reserved, bytes not verified yet) -> `verifying` -> `completed`, or `rejected` with a
reason (checksum, size, type, virus) or `expired`. Only `completed` files are listed or served.
`reserved_until` is when a pending reservation lapses (the sweep then deletes its bytes).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_upload_states"
down_revision: str | None = "20261206_file_expiry_range"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_STATES = ("pending", "verifying", "rejected")


def upgrade() -> None:
    for state in NEW_STATES:
        op.execute(f"ALTER TYPE upload_status ADD VALUE IF NOT EXISTS '{state}'")
    op.add_column("file_uploads", sa.Column("rejection_reason", sa.String(32), nullable=True))
    op.add_column(
        "file_uploads", sa.Column("reserved_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        op.f("ix_file_uploads_reserved_until"),
        "file_uploads",
        ["reserved_until"],
        postgresql_where=sa.text("reserved_until IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_file_uploads_reserved_until"), table_name="file_uploads")
    op.drop_column("file_uploads", "reserved_until")
    op.drop_column("file_uploads", "rejection_reason")
    # PostgreSQL cannot drop enum values; rows in the new states become `expired`.
    op.execute(
        "UPDATE file_uploads SET upload_status = 'expired' "
        "WHERE upload_status::text IN ('pending', 'verifying', 'rejected')"
    )
