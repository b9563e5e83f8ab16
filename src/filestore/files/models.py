"""The `file_uploads` table: one row per stored object, written after the object is complete."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Identity,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from filestore.db import Base, TimestampMixin

# Python reads timestamps only up to year 9999, in any session time zone: keep a day's margin.
EXPIRES_AT_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
EXPIRES_AT_LATEST = datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)


class UploadStatus(enum.StrEnum):
    """pending (reserved, bytes not checked) -> verifying -> completed, or rejected / expired.
    Only `completed` files are listed or served."""

    pending = "pending"
    uploading = "uploading"
    verifying = "verifying"
    completed = "completed"
    rejected = "rejected"
    deleted = "deleted"
    expired = "expired"


class RejectionReason(enum.StrEnum):
    """Why verification refused an upload's bytes."""

    size = "size"
    checksum = "checksum"
    type = "type"
    virus = "virus"
    missing = "missing"


class ScanStatus(enum.StrEnum):
    """What virus scanning said about a stored file (infected files are never stored)."""

    clean = "clean"  # clamd scanned every byte and found nothing
    unscanned = "unscanned"  # VIRUS_SCAN=clamd, but clamd could not scan it (VIRUS_SCAN_FAIL_OPEN)
    disabled = "disabled"  # stored while VIRUS_SCAN=off


class FileUpload(TimestampMixin, Base):
    __tablename__ = "file_uploads"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Not indexed alone (unlike other tables): at millions of rows the planner took that index
    # for a heavy customer's listing; the listing and stuck-row indexes below serve every query.
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    filename: Mapped[str] = mapped_column(String(255))
    bucket: Mapped[str] = mapped_column(String(63))
    object_key: Mapped[str] = mapped_column(String(1024))
    file_size: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(255))
    file_type: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    upload_status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, name="upload_status", values_callable=lambda e: [m.value for m in e]),
        server_default=UploadStatus.completed.value,
    )
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="SET NULL")
    )
    ticket_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tickets.id", ondelete="SET NULL")
    )
    service_id: Mapped[int | None] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=text("'{}'::jsonb")
    )
    expires_at: Mapped[datetime | None]
    uploaded_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    deleted_at: Mapped[datetime | None]
    scan_status: Mapped[ScanStatus] = mapped_column(
        Enum(ScanStatus, name="scan_status", values_callable=lambda e: [m.value for m in e]),
        server_default=ScanStatus.disabled.value,
    )
    rejection_reason: Mapped[str | None] = mapped_column(String(32))
    # Until when a pending reservation (a direct upload's presigned PUT) may be completed.
    reserved_until: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            f"expires_at BETWEEN '{EXPIRES_AT_EARLIEST.isoformat(sep=' ')}' "
            f"AND '{EXPIRES_AT_LATEST.isoformat(sep=' ')}'",
            name="expires_at_range",
        ),
        # Listings walk these backwards: newest first, `id` breaking ties (keyset cursor).
        Index("ix_file_uploads_customer_listing", "customer_id", "created_at", "id"),
        Index("ix_file_uploads_ticket_listing", "ticket_id", "created_at", "id"),
        Index("uq_file_uploads_bucket_key", "bucket", "object_key", unique=True),
        # The expiry sweep walks due files in (expires_at, id) order.
        Index(
            "ix_file_uploads_expiry_due",
            "expires_at",
            "id",
            postgresql_where=text("expires_at IS NOT NULL AND upload_status = 'completed'"),
        ),
        # The sweep's form uploads stuck in `uploading`/`verifying` (few, so a tiny index).
        Index(
            "ix_file_uploads_stuck",
            "created_at",
            postgresql_where=text(
                "upload_status IN ('uploading', 'verifying') AND reserved_until IS NULL"
            ),
        ),
        # The Overview's per-day counts (BRIN: no ordering, so listings never walk it).
        Index("ix_file_uploads_created_brin", "created_at", postgresql_using="brin"),
        Index(
            "ix_file_uploads_reserved_until",
            "reserved_until",
            postgresql_where=text("reserved_until IS NOT NULL"),
        ),
    )


class StorageDelta(Base):
    """Changes to the live bytes and files per bucket, appended by a trigger on `file_uploads`
    (migration 20261208) and folded together by the cleanup sweep: `/metrics` sums a few rows
    instead of scanning every file, and no upload waits on a shared counter row."""

    __tablename__ = "file_storage_deltas"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(63))
    bytes: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(BigInteger)


class OrphanSweepCursor(Base):
    """Where the orphan sweep stopped listing a bucket: the next tick lists from there."""

    __tablename__ = "orphan_sweep_cursors"

    bucket: Mapped[str] = mapped_column(String(63), primary_key=True)
    after_key: Mapped[str] = mapped_column(String(1024), server_default="")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
