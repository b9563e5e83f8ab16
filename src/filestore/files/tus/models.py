"""The `tus_uploads` table: one row per resumable upload, the truth about its offset.

The bytes live in the object store (an S3 multipart upload plus a small tail object, or a
partial file in the local store); this row says how many of them count (`upload_offset`), which
S3 parts hold them (`parts`) and which process may append next (a lease: `lock_token` until
`locked_until`). Every API process reads and writes the same row, so an upload can resume on any
of them, after any restart.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from filestore.db import Base, TimestampMixin


class TusStatus(enum.StrEnum):
    """uploading -> completed (a file row exists) or rejected (verification refused it)."""

    uploading = "uploading"
    completed = "completed"
    rejected = "rejected"


class TusUpload(TimestampMixin, Base):
    __tablename__ = "tus_uploads"

    # 32 random hex digits: the upload's URL, unguessable.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[TusStatus] = mapped_column(
        Enum(TusStatus, name="tus_status", values_callable=lambda e: [m.value for m in e]),
        server_default=TusStatus.uploading.value,
    )
    # None while the client deferred the length (creation-defer-length).
    upload_length: Mapped[int | None] = mapped_column(BigInteger)
    upload_offset: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # The Upload-Metadata pairs as sent (decoded), checked again when the upload completes.
    upload_metadata: Mapped[dict[str, str]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb")
    )
    filename: Mapped[str] = mapped_column(String(255))
    # Where the finished object goes (chosen at creation, by the same rules as a form upload).
    bucket: Mapped[str] = mapped_column(String(63))
    object_key: Mapped[str] = mapped_column(String(1024))
    # S3: the multipart upload and its completed parts [{"n", "etag", "size"}], plus the bytes
    # after the last part, kept as a small object (`tail_key`) until a part can be cut.
    multipart_id: Mapped[str | None] = mapped_column(String(1024))
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    tail_key: Mapped[str | None] = mapped_column(String(1024))
    expires_at: Mapped[datetime]
    lock_token: Mapped[str | None] = mapped_column(String(32))
    locked_until: Mapped[datetime | None]
    file_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("file_uploads.id", ondelete="SET NULL")
    )
    rejection_code: Mapped[str | None] = mapped_column(String(64))
    rejection_detail: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (Index("ix_tus_uploads_expires_at", "expires_at"),)
