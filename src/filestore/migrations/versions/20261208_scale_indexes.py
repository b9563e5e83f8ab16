"""Indexes and bookkeeping for ten million files.

Revision ID: 20261208_scale_indexes
Revises: 20261207_tus_uploads
Create Date: 2026-12-08 09:00:00

- Listings (a customer's or a ticket's files, newest first, `id` breaking ties) walk
  `(customer_id, created_at, id)` / `(ticket_id, created_at, id)` backwards, which also serves
  the keyset cursor; they replace the `(…, created_at)` indexes.
- `ix_file_uploads_created_at` goes: at millions of rows the planner walked it for a heavy
  customer's listing, filtering out everyone else's files; the stuck-upload sweep gets a
  partial index of `uploading` rows instead.
- The expiry sweep walks due files in `(expires_at, id)` order on a partial index of completed
  files with an expiry.
- `file_storage_deltas`: a trigger on `file_uploads` appends each change to a bucket's live
  bytes and files; `/metrics` sums these few rows instead of aggregating every file, and the
  cleanup sweep folds them together. Appending (no shared counter row) means concurrent
  uploads never wait on each other.
- `orphan_sweep_cursors`: where the orphan sweep stopped listing each bucket.

Plain CREATE INDEX (not CONCURRENTLY, which cannot run in a transaction): on a large table run
this migration in a quiet window.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_scale_indexes"
down_revision: str | None = "20261207_tus_uploads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "upload_status = 'completed'"

TRIGGER_FUNCTION = f"""
CREATE FUNCTION file_storage_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.{LIVE} THEN
        INSERT INTO file_storage_deltas (bucket, bytes, files)
        VALUES (OLD.bucket, -OLD.file_size, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.{LIVE} THEN
        INSERT INTO file_storage_deltas (bucket, bytes, files)
        VALUES (NEW.bucket, NEW.file_size, 1);
    END IF;
    RETURN NULL;
END $$
"""

TRIGGER = """
CREATE TRIGGER file_storage_delta
AFTER INSERT OR DELETE OR UPDATE OF upload_status, bucket, file_size ON file_uploads
FOR EACH ROW EXECUTE FUNCTION file_storage_delta()
"""


def upgrade() -> None:
    op.drop_index("ix_file_uploads_customer_created", table_name="file_uploads")
    op.drop_index("ix_file_uploads_ticket_created", table_name="file_uploads")
    op.drop_index("ix_file_uploads_expires_at", table_name="file_uploads")
    op.drop_index("ix_file_uploads_created_at", table_name="file_uploads")
    op.create_index(
        "ix_file_uploads_stuck",
        "file_uploads",
        ["created_at"],
        postgresql_where=sa.text("upload_status = 'uploading'"),
    )
    op.create_index(
        "ix_file_uploads_customer_listing", "file_uploads", ["customer_id", "created_at", "id"]
    )
    op.create_index(
        "ix_file_uploads_ticket_listing", "file_uploads", ["ticket_id", "created_at", "id"]
    )
    op.create_index(
        "ix_file_uploads_expiry_due",
        "file_uploads",
        ["expires_at", "id"],
        postgresql_where=sa.text(f"expires_at IS NOT NULL AND {LIVE}"),
    )
    op.create_table(
        "file_storage_deltas",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_storage_deltas")),
    )
    op.execute(
        "INSERT INTO file_storage_deltas (bucket, bytes, files) "
        f"SELECT bucket, sum(file_size), count(*) FROM file_uploads WHERE {LIVE} GROUP BY bucket"
    )
    op.execute(TRIGGER_FUNCTION)
    op.execute(TRIGGER)
    op.create_table(
        "orphan_sweep_cursors",
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("after_key", sa.String(1024), server_default="", nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_orphan_sweep_cursors")),
    )


def downgrade() -> None:
    op.drop_table("orphan_sweep_cursors")
    op.execute("DROP TRIGGER file_storage_delta ON file_uploads")
    op.execute("DROP FUNCTION file_storage_delta()")
    op.drop_table("file_storage_deltas")
    op.drop_index("ix_file_uploads_expiry_due", table_name="file_uploads")
    op.drop_index("ix_file_uploads_ticket_listing", table_name="file_uploads")
    op.drop_index("ix_file_uploads_customer_listing", table_name="file_uploads")
    op.drop_index("ix_file_uploads_stuck", table_name="file_uploads")
    op.create_index("ix_file_uploads_created_at", "file_uploads", ["created_at"])
    op.create_index(
        "ix_file_uploads_expires_at",
        "file_uploads",
        ["expires_at"],
        postgresql_where=sa.text(f"expires_at IS NOT NULL AND {LIVE}"),
    )
    op.create_index("ix_file_uploads_ticket_created", "file_uploads", ["ticket_id", "created_at"])
    op.create_index(
        "ix_file_uploads_customer_created", "file_uploads", ["customer_id", "created_at"]
    )
