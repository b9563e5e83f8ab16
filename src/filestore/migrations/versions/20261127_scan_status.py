"""Virus scanning: `file_uploads.scan_status` (clean | unscanned | disabled).

Revision ID: 20261127_scan_status
Revises: 20261126_accounts
Create Date: 2026-11-27 12:00:00

Files stored before this revision were never scanned: they get "disabled".
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261127_scan_status"
down_revision: str | None = "20261126_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

scan_status = postgresql.ENUM(
    "clean", "unscanned", "disabled", name="scan_status", create_type=False
)


def upgrade() -> None:
    scan_status.create(op.get_bind(), checkfirst=True)
    op.add_column(
        "file_uploads",
        sa.Column("scan_status", scan_status, server_default="disabled", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("file_uploads", "scan_status")
    scan_status.drop(op.get_bind(), checkfirst=True)
