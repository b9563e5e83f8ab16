"""`file_uploads.expires_at` only holds dates Python can read back: from 1970 to 9998.

Revision ID: 20261206_file_expiry_range
Revises: 20261127_scan_status
Create Date: 2026-12-06 12:00:00

PostgreSQL stores timestamps up to year 294276, Python's datetime only up to 9999: a row with
`9999-12-31T23:59:59-14:00` (10000-01-01 UTC) made every read of it fail. Rows out of range
are clamped (an expiry that far away, or `infinity`, means "never"; one before 1970 has long
expired either way), then a CHECK constraint keeps new ones out.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261206_file_expiry_range"
down_revision: str | None = "20261127_scan_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EARLIEST = "1970-01-01 00:00:00+00"
LATEST = "9998-12-31 23:59:59+00"


def upgrade() -> None:
    op.execute(f"UPDATE file_uploads SET expires_at = '{LATEST}' WHERE expires_at > '{LATEST}'")
    op.execute(f"UPDATE file_uploads SET expires_at = '{EARLIEST}' WHERE expires_at < '{EARLIEST}'")
    op.create_check_constraint(
        op.f("ck_file_uploads_expires_at_range"),
        "file_uploads",
        f"expires_at BETWEEN '{EARLIEST}' AND '{LATEST}'",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_file_uploads_expires_at_range"), "file_uploads", type_="check")
