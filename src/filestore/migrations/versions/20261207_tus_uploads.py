"""Resumable (tus) uploads: the `tus_uploads` table.

Revision ID: 20261207_tus_uploads
Revises: 20261206_upload_states
Create Date: 2026-12-07 09:00:00

One row per tus upload: its offset, its S3 multipart upload and parts, the small tail object
that holds the bytes after the last part, its expiry and the lease of the process appending to
it. The rows are the truth about every offset, so uploads resume on any API process.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261207_tus_uploads"
down_revision: str | None = "20261206_upload_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    status = postgresql.ENUM("uploading", "completed", "rejected", name="tus_status")
    op.create_table(
        "tus_uploads",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", status, server_default="uploading", nullable=False),
        sa.Column("upload_length", sa.BigInteger(), nullable=True),
        sa.Column("upload_offset", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "upload_metadata",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("multipart_id", sa.String(1024), nullable=True),
        sa.Column(
            "parts", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("tail_key", sa.String(1024), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lock_token", sa.String(32), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("file_id", sa.BigInteger(), nullable=True),
        sa.Column("rejection_code", sa.String(64), nullable=True),
        sa.Column("rejection_detail", sa.String(1000), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tus_uploads_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["file_uploads.id"],
            name=op.f("fk_tus_uploads_file_id_file_uploads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tus_uploads")),
    )
    op.create_index(op.f("ix_tus_uploads_created_at"), "tus_uploads", ["created_at"])
    op.create_index("ix_tus_uploads_expires_at", "tus_uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_tus_uploads_expires_at", table_name="tus_uploads")
    op.drop_index(op.f("ix_tus_uploads_created_at"), table_name="tus_uploads")
    op.drop_table("tus_uploads")
    op.execute("DROP TYPE IF EXISTS tus_status")
