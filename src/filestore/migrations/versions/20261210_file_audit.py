"""File access in the audit log: `audit_events.file_id` and `customer_id`, each indexed.

Revision ID: 20261210_file_audit
Revises: 20261209_import_updates_mappings
Create Date: 2026-12-08 09:00:00

Uploads, downloads, deletes, issued links and virus rejections are audit events; admins filter
them by file and by customer. Plain ids (no foreign keys), like `actor_id`: events outlive the
rows they are about.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261210_file_audit"
down_revision: str | None = "20261209_import_updates_mappings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("file_id", sa.BigInteger(), nullable=True))
    op.add_column("audit_events", sa.Column("customer_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_audit_events_file_id", "audit_events", ["file_id", "created_at"])
    op.create_index("ix_audit_events_customer_id", "audit_events", ["customer_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_customer_id", table_name="audit_events")
    op.drop_index("ix_audit_events_file_id", table_name="audit_events")
    op.drop_column("audit_events", "customer_id")
    op.drop_column("audit_events", "file_id")
