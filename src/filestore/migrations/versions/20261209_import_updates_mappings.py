"""Imports that update, name a saved mapping, and can later be undone.

Revision ID: 20261209_import_updates_mappings
Revises: 20261208_scale_indexes
Create Date: 2026-12-09 03:00:00

`background_jobs.updated_rows` counts the rows an `on_duplicate` update applied;
`customers.created_by_job_id` names the import that created a customer (an update skips its
own job's customers); `import_updates` keeps what each update replaced; `import_mappings`
holds the saved mapping templates; `job_type` gains `import_undo`, the job that undoes an
import (an enum value cannot be dropped: the downgrade leaves it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261209_import_updates_mappings"
down_revision: str | None = "20261208_scale_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TYPE job_type ADD VALUE IF NOT EXISTS 'import_undo'")
    op.add_column(
        "background_jobs",
        sa.Column("updated_rows", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "customers", sa.Column("created_by_job_id", postgresql.UUID(as_uuid=True), nullable=True)
    )
    op.create_table(
        "import_updates",
        sa.Column("job_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("previous", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["background_jobs.id"],
            name=op.f("fk_import_updates_job_id_background_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_import_updates_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "customer_id", name=op.f("pk_import_updates")),
    )
    op.create_table(
        "import_mappings",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column(
            "mapping", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_import_mappings_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_mappings")),
        sa.UniqueConstraint("name", name=op.f("uq_import_mappings_name")),
    )
    op.create_index(op.f("ix_import_mappings_created_at"), "import_mappings", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_import_mappings_created_at"), table_name="import_mappings")
    op.drop_table("import_mappings")
    op.drop_table("import_updates")
    op.drop_column("customers", "created_by_job_id")
    op.drop_column("background_jobs", "updated_rows")
