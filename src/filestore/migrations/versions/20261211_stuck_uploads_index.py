"""The stuck-upload sweep's index covers form uploads left `verifying` too.

Revision ID: 20261211_stuck_uploads_index
Revises: 20261210_file_audit
Create Date: 2026-12-10 09:00:00

A form upload now has its row from its first byte: `uploading` while the bytes stream,
`verifying` once they are stored. A crash in either state leaves a row the sweep removes
(`files/cleanup.stuck_rows`); direct uploads' reservations (`reserved_until` set) expire by
their own rule. The partial index follows the query.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261211_stuck_uploads_index"
down_revision: str | None = "20261210_file_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STUCK = "upload_status IN ('uploading', 'verifying') AND reserved_until IS NULL"


def upgrade() -> None:
    # `verifying` was added to the enum by 20261206_upload_states; PostgreSQL lets an index
    # predicate use a new enum value only once that is committed (one upgrade from an older
    # revision runs every migration in one transaction), hence the autocommit block.
    with op.get_context().autocommit_block():
        op.drop_index("ix_file_uploads_stuck", table_name="file_uploads")
        op.create_index(
            "ix_file_uploads_stuck",
            "file_uploads",
            ["created_at"],
            postgresql_where=sa.text(STUCK),
        )


def downgrade() -> None:
    op.drop_index("ix_file_uploads_stuck", table_name="file_uploads")
    op.create_index(
        "ix_file_uploads_stuck",
        "file_uploads",
        ["created_at"],
        postgresql_where=sa.text("upload_status = 'uploading'"),
    )
