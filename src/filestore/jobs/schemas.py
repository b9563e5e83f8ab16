"""Response bodies of `/files/jobs`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from filestore.schemas import Schema


class JobOut(Schema):
    id: uuid.UUID
    job_type: str
    status: str
    dry_run: bool = Field(
        description="An import's dry run (`validation_rules.dry_run`): counted, nothing written"
    )
    file_upload_id: int | None
    total_rows: int | None
    processed_rows: int
    successful_rows: int
    failed_rows: int
    skipped_rows: int
    created_rows: int = Field(description="Of successful_rows: new customers")
    updated_rows: int = Field(description="Of successful_rows: existing customers updated")
    warning_rows: int
    rows_per_second: float | None = Field(
        description="Speed of the run at its last checkpoint (sliding window of ~10 s)"
    )
    eta_seconds: float | None = Field(
        description="Seconds left at that speed while the job runs; 0 once completed"
    )
    error_log: list[dict[str, Any]]
    error_count: int
    warnings: list[str]
    result: dict[str, Any]
    message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobCreated(Schema):
    job_id: uuid.UUID
    status: str
    created_at: datetime
