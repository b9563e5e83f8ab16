"""Background jobs, import row errors, and procrastinate's queue schema.

Revision ID: 20261125_background_jobs
Revises: 20240723_create_file_storage
Create Date: 2026-11-25 12:00:00

procrastinate's schema is applied from the installed package (pinned in requirements.lock).
Upgrading procrastinate to a release with schema migrations needs a new revision here that
runs its `procrastinate/sql/migrations/*.sql` files.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261125_background_jobs"
down_revision: str | None = "20240723_create_file_storage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

job_type = postgresql.ENUM("csv_import", "file_cleanup", name="job_type", create_type=False)
job_status = postgresql.ENUM(
    "pending",
    "processing",
    "completed",
    "failed",
    "cancelled",
    name="job_status",
    create_type=False,
)


def _raw_execute(statement: str) -> None:
    # The driver connection, not text(): procrastinate's SQL contains colons and percent signs.
    op.get_bind().connection.driver_connection.execute(statement)  # type: ignore[union-attr]


def upgrade() -> None:
    from procrastinate.schema import SchemaManager

    job_type.create(op.get_bind(), checkfirst=True)
    job_status.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "background_jobs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("job_type", job_type, nullable=False),
        sa.Column("status", job_status, server_default="pending", nullable=False),
        sa.Column("file_upload_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "params", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("total_rows", sa.Integer(), nullable=True),
        sa.Column("processed_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("successful_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("warning_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "error_log", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column(
            "warnings", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column(
            "result", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("checkpoint_offset", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("checkpoint_line", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("queue_job_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["file_upload_id"],
            ["file_uploads.id"],
            name="fk_background_jobs_file_upload_id_file_uploads",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name="fk_background_jobs_created_by_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_background_jobs"),
    )
    op.create_index("ix_background_jobs_created_at", "background_jobs", ["created_at"])
    op.create_index("ix_background_jobs_status_type", "background_jobs", ["status", "job_type"])
    op.create_table(
        "import_row_errors",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(255), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("is_warning", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["background_jobs.id"],
            name="fk_import_row_errors_job_id_background_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_import_row_errors"),
    )
    op.create_index("ix_import_row_errors_job_row", "import_row_errors", ["job_id", "row"])
    _raw_execute(SchemaManager.get_schema())


def downgrade() -> None:
    op.drop_table("import_row_errors")
    op.drop_table("background_jobs")
    job_status.drop(op.get_bind(), checkfirst=True)
    job_type.drop(op.get_bind(), checkfirst=True)
    for statement in (
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, procrastinate_workers CASCADE",
        "DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type, procrastinate_job_status CASCADE",
        # Its functions too, or a later upgrade fails on "function ... already exists".
        "DO $$ DECLARE f regprocedure; BEGIN"
        " FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace"
        " AND p.proname LIKE 'procrastinate\\_%' LOOP EXECUTE 'DROP FUNCTION ' || f || ' CASCADE'; END LOOP;"
        " END $$",
    ):
        _raw_execute(statement)
