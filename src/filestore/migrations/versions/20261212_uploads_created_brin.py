"""A BRIN index on `file_uploads.created_at` for the console's Overview.

Revision ID: 20261212_uploads_created_brin
Revises: 20261211_stuck_uploads_index
Create Date: 2026-12-12 09:00:00

`GET /stats/overview` groups the last N days of uploads by day, status and reason. Rows are
appended in `created_at` order, so a BRIN index (a few pages for ten million rows) narrows that
to the window's blocks. Unlike the B-tree `ix_file_uploads_created_at` that 20261208 dropped, it
gives no ordering, so the planner cannot walk it for a customer's newest-first listing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261212_uploads_created_brin"
down_revision: str | None = "20261211_stuck_uploads_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_file_uploads_created_brin",
        "file_uploads",
        ["created_at"],
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index("ix_file_uploads_created_brin", table_name="file_uploads")
