"""The `background_jobs` table and the per-row errors of import jobs."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from filestore.db import Base, TimestampMixin


class JobType(enum.StrEnum):
    csv_import = "csv_import"
    file_cleanup = "file_cleanup"
    import_undo = "import_undo"


class JobStatus(enum.StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


FINISHED_STATUSES = (JobStatus.completed, JobStatus.failed, JobStatus.cancelled)
ERROR_LOG_CAP = 1000


def _job_type() -> Enum:
    return Enum(JobType, name="job_type", values_callable=lambda e: [m.value for m in e])


def _job_status() -> Enum:
    return Enum(JobStatus, name="job_status", values_callable=lambda e: [m.value for m in e])


class BackgroundJob(TimestampMixin, Base):
    """One job. Counters and `checkpoint_offset` are committed with each batch of work."""

    __tablename__ = "background_jobs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    job_type: Mapped[JobType] = mapped_column(_job_type())
    status: Mapped[JobStatus] = mapped_column(_job_status(), server_default=JobStatus.pending.value)
    file_upload_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("file_uploads.id", ondelete="SET NULL")
    )
    created_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    total_rows: Mapped[int | None] = mapped_column(Integer)
    processed_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    successful_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    failed_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    skipped_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    # Of `successful_rows`, those that updated an existing customer (`on_duplicate`).
    updated_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    warning_rows: Mapped[int] = mapped_column(Integer, server_default="0")
    error_log: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    warnings: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    message: Mapped[str | None] = mapped_column(Text)
    checkpoint_offset: Mapped[int] = mapped_column(BigInteger, server_default="0")
    checkpoint_line: Mapped[int] = mapped_column(Integer, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, server_default="false")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_background_jobs_status_type", "status", "job_type"),)

    @property
    def created_rows(self) -> int:
        """Rows that created a customer (`successful_rows` less the updates)."""
        return self.successful_rows - self.updated_rows

    @property
    def dry_run(self) -> bool:
        """An import run with `validation_rules.dry_run`: it counts, and writes nothing."""
        rules = self.params.get("validation_rules") if self.params else None
        return isinstance(rules, dict) and rules.get("dry_run") is True

    @property
    def rows_per_second(self) -> float | None:
        """The run's speed at its last checkpoint (the import saves it in `result`)."""
        rate = self.result.get("rows_per_second") if self.result else None
        return float(rate) if isinstance(rate, int | float) else None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at that speed, while the job runs; 0 once finished."""
        if self.status in FINISHED_STATUSES:
            return 0.0 if self.status is JobStatus.completed else None
        eta = self.result.get("eta_seconds") if self.result else None
        return float(eta) if isinstance(eta, int | float) else None

    @property
    def error_count(self) -> int:
        """Every failed row; `error_log` keeps only the first ERROR_LOG_CAP of them."""
        return self.failed_rows


class ImportRowError(Base):
    """Every failed (or warned) row of an import, for `errors.csv`; committed with its batch."""

    __tablename__ = "import_row_errors"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("background_jobs.id", ondelete="CASCADE")
    )
    row: Mapped[int] = mapped_column(Integer)
    column: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    is_warning: Mapped[bool] = mapped_column(Boolean, server_default="false")

    __table_args__ = (Index("ix_import_row_errors_job_row", "job_id", "row"),)


class JobGaugeDelta(Base):
    """Changes to the job gauges (jobs per type and status, import row and time totals),
    appended by a trigger on `background_jobs` (migration 20261208) and folded by the cleanup
    sweep: `/metrics` sums a few rows however long the job history grows."""

    __tablename__ = "job_gauge_deltas"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_type: Mapped[JobType] = mapped_column(_job_type())
    status: Mapped[JobStatus] = mapped_column(_job_status())
    jobs: Mapped[int] = mapped_column(BigInteger)
    successful_rows: Mapped[int] = mapped_column(BigInteger)
    failed_rows: Mapped[int] = mapped_column(BigInteger)
    skipped_rows: Mapped[int] = mapped_column(BigInteger)
    warning_rows: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[Decimal] = mapped_column(Numeric)
    finished: Mapped[int] = mapped_column(BigInteger)
