"""Response bodies of `/files/jobs`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from filestore.schemas import Schema


class JobOut(Schema):
    id: uuid.UUID
    job_type: str
    status: str
    file_upload_id: int | None
    total_rows: int | None
    processed_rows: int
    successful_rows: int
    failed_rows: int
    skipped_rows: int
    warning_rows: int
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
