"""Starting an import (check the file, create the job row, defer the queue job atomically)
and previewing one (the same checks, then `preview.py` on the stored file, nothing written)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth.models import User
from filestore.customers.models import Customer
from filestore.errors import Unprocessable
from filestore.files import service as files_service
from filestore.files.models import FileUpload
from filestore.imports import mappings as imports_mappings
from filestore.imports import preview as imports_preview
from filestore.imports import tasks as imports_tasks
from filestore.imports.fields import CUSTOMER_COLUMNS
from filestore.imports.rows import ImportFileError, ValidationRules
from filestore.imports.schemas import CsvImportRequest, ImportSpec
from filestore.jobs import service as jobs_service
from filestore.jobs.models import BackgroundJob, JobType
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage

log = structlog.get_logger(__name__)


IMPORTABLE = ("csv", "xlsx")


def check_is_csv(file: FileUpload) -> None:
    """A CSV or an .xlsx workbook, by type or name; an old .xls gets its own message."""
    extension = file.filename.lower().rpartition(".")[2]
    if file.file_type in IMPORTABLE or extension in IMPORTABLE:
        return
    if file.file_type == "xls" or extension == "xls":
        raise Unprocessable(
            f"File {file.id} is an Excel 97-2003 workbook (.xls), which imports do not read: "
            "open it in Excel and save it as .xlsx or as CSV UTF-8",
            code="xls_not_supported",
        )
    raise Unprocessable(
        f"File {file.id} is not a CSV file or an .xlsx workbook (file_type {file.file_type!r})",
        code="not_csv",
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
        "mapping_config": await imports_mappings.effective_mapping(session, request),
        "mapping_template": request.mapping_template,
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


async def _stored_customers(
    session: AsyncSession, emails: list[str]
) -> dict[str, dict[str, str | None]]:
    rows = await session.execute(select(Customer).where(func.lower(Customer.email).in_(emails)))
    return {
        customer.email.lower(): {name: getattr(customer, name) for name in CUSTOMER_COLUMNS}
        for customer in rows.scalars()
    }


async def preview(
    session: AsyncSession,
    *,
    request: ImportSpec,
    user: User,
    settings: Settings,
    storage: ObjectStorage,
    now: datetime,
) -> dict[str, Any]:
    """What `start` would import from this file, read from its first bytes only."""
    file = await files_service.get_visible(
        session, file_id=request.file_upload_id, user=user, settings=settings, now=now
    )
    check_is_csv(file)

    async def lookup(emails: list[str]) -> dict[str, dict[str, str | None]]:
        return await _stored_customers(session, emails)

    rules = ValidationRules.from_params(request.validation_rules.model_dump())
    try:
        return await imports_preview.preview(
            imports_tasks.object_source(storage, file),
            mapping=await imports_mappings.effective_mapping(session, request),
            rules=rules,
            lookup=lookup,
        )
    except ImportFileError as exc:
        raise Unprocessable(str(exc), code="unreadable_file") from exc
