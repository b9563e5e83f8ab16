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
- `job_gauge_deltas`: the same for the job gauges (jobs per type and status, import row and
  time totals), which otherwise aggregate the whole, ever-growing job history per scrape.
- `orphan_sweep_cursors`: where the orphan sweep stopped listing each bucket.

Plain CREATE INDEX (not CONCURRENTLY, which cannot run in a transaction): on a large table run
this migration in a quiet window.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

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

JOB_COLUMNS = (
    "job_type, status, jobs, successful_rows, failed_rows, skipped_rows, warning_rows, seconds, "
    "finished"
)


def _job_values(row: str, sign: str) -> str:
    return (
        f"{row}.job_type, {row}.status, {sign}1, {sign}{row}.successful_rows, "
        f"{sign}{row}.failed_rows, {sign}{row}.skipped_rows, {sign}{row}.warning_rows, "
        f"{sign}coalesce(extract(epoch FROM {row}.finished_at - {row}.started_at), 0), "
        f"{sign}({row}.finished_at IS NOT NULL)::int"
    )


JOB_FIELDS = (
    "job_type, status, successful_rows, failed_rows, skipped_rows, warning_rows, started_at, "
    "finished_at"
)
JOB_TRIGGER_FUNCTION = f"""
CREATE FUNCTION job_gauge_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND ROW(OLD.{JOB_FIELDS.replace(", ", ", OLD.")})
            IS NOT DISTINCT FROM ROW(NEW.{JOB_FIELDS.replace(", ", ", NEW.")}) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO job_gauge_deltas ({JOB_COLUMNS}) VALUES ({_job_values("OLD", "-")});
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO job_gauge_deltas ({JOB_COLUMNS}) VALUES ({_job_values("NEW", "")});
    END IF;
    RETURN NULL;
END $$
"""
JOB_TRIGGER = f"""
CREATE TRIGGER job_gauge_delta
AFTER INSERT OR DELETE OR UPDATE OF {JOB_FIELDS} ON background_jobs
FOR EACH ROW EXECUTE FUNCTION job_gauge_delta()
"""
JOB_SEED = (
    f"INSERT INTO job_gauge_deltas ({JOB_COLUMNS}) "
    "SELECT job_type, status, count(*), sum(successful_rows), sum(failed_rows), "
    "sum(skipped_rows), sum(warning_rows), "
    "coalesce(sum(extract(epoch FROM finished_at - started_at)), 0), count(finished_at) "
    "FROM background_jobs GROUP BY job_type, status"
)

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
    job_type = postgresql.ENUM(name="job_type", create_type=False)
    job_status = postgresql.ENUM(name="job_status", create_type=False)
    counters = ("jobs", "successful_rows", "failed_rows", "skipped_rows", "warning_rows")
    op.create_table(
        "job_gauge_deltas",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("job_type", job_type, nullable=False),
        sa.Column("status", job_status, nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in counters),
        sa.Column("seconds", sa.Numeric(), nullable=False),
        sa.Column("finished", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_gauge_deltas")),
    )
    op.execute(JOB_SEED)
    op.execute(JOB_TRIGGER_FUNCTION)
    op.execute(JOB_TRIGGER)
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
    op.execute("DROP TRIGGER job_gauge_delta ON background_jobs")
    op.execute("DROP FUNCTION job_gauge_delta()")
    op.drop_table("job_gauge_deltas")
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
