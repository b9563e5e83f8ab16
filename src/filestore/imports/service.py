"""Starting an import: check the file, create the job row, defer the queue job atomically."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth.models import User
from filestore.errors import Unprocessable
from filestore.files import service as files_service
from filestore.files.models import FileUpload
from filestore.imports import tasks as imports_tasks
from filestore.imports.schemas import CsvImportRequest
from filestore.jobs import service as jobs_service
from filestore.jobs.models import BackgroundJob, JobType
from filestore.settings import Settings

log = structlog.get_logger(__name__)


def check_is_csv(file: FileUpload) -> None:
    if file.file_type != "csv" and not file.filename.lower().endswith(".csv"):
        raise Unprocessable(
            f"File {file.id} is not a CSV file (file_type {file.file_type!r})", code="not_csv"
        )


async def start(
    session: AsyncSession,
    *,
    request: CsvImportRequest,
    user: User,
    settings: Settings,
    now: datetime,
) -> BackgroundJob:
    """Create the job and its queue entry in the session's transaction: both or neither."""
    file = await files_service.get_visible(
        session, file_id=request.file_upload_id, user=user, settings=settings, now=now
    )
    check_is_csv(file)
    if request.validation_rules.send_invites and not settings.smtp_enabled:
        raise Unprocessable(
            "send_invites needs e-mail: set SMTP_HOST (and SMTP_FROM, …) first",
            code="smtp_not_configured",
        )
    params: dict[str, Any] = {
        "import_type": request.import_type,
        "mapping_config": request.mapping_config,
        "validation_rules": request.validation_rules.model_dump(),
    }
    job = await jobs_service.create(
        session,
        job_type=JobType.csv_import,
        params=params,
        created_by=user.id,
        file_upload_id=file.id,
    )
    raw = await jobs_service.raw_connection(session)
    queue_job_id = await imports_tasks.run_customer_import.configure(
        connection=raw, lock=f"import:{job.id}"
    ).defer_async(job_id=str(job.id))
    job.queue_job_id = queue_job_id
    await session.flush()
    log.info("import.started", job_id=str(job.id), file_id=file.id, user_id=user.id)
    return job
