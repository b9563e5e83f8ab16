"""Starting an import (check the file, create the job row, defer the queue job atomically),
previewing one (the same checks, then `preview.py` on the stored file, nothing written), and
asking for one to be undone (the checks, then a job: `undo.py`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.audit import service as audit_service
from filestore.auth.models import User
from filestore.customers.models import Customer
from filestore.errors import Conflict, NotFound, Unprocessable
from filestore.files import service as files_service
from filestore.files.models import FileUpload
from filestore.imports import mappings as imports_mappings
from filestore.imports import preview as imports_preview
from filestore.imports import tasks as imports_tasks
from filestore.imports.fields import CUSTOMER_COLUMNS
from filestore.imports.rows import ImportFileError, ValidationRules
from filestore.imports.schemas import CsvImportRequest, ImportSpec
from filestore.imports.undo import undo_params
from filestore.jobs import service as jobs_service
from filestore.jobs.models import BackgroundJob, JobStatus, JobType
from filestore.requests import ClientInfo
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


_UNDO_REFUSED = {
    JobStatus.pending: ("The import has not run yet: cancel it instead", "import_running"),
    JobStatus.processing: ("The import is still running: cancel it or wait", "import_running"),
    JobStatus.failed: (
        "The import failed: only a completed or cancelled import can be undone",
        "import_failed",
    ),
}


async def request_undo(
    session: AsyncSession, *, job_id: uuid.UUID, user: User, client: ClientInfo
) -> BackgroundJob:
    """The undo job of an import: a new one, or the one already pending or running (asking
    twice is harmless). 409 with the reason when the import cannot be undone."""
    stmt = select(BackgroundJob).where(BackgroundJob.id == job_id).with_for_update()
    job = (await session.execute(stmt)).scalar_one_or_none()
    if job is None:
        raise NotFound("Job not found", code="job_not_found")
    if job.job_type is not JobType.csv_import:
        raise Conflict("Only an import can be undone", code="not_an_import")
    if job.status in _UNDO_REFUSED:
        message, code = _UNDO_REFUSED[job.status]
        raise Conflict(message, code=code)
    if (job.params.get("validation_rules") or {}).get("dry_run"):
        raise Conflict("A dry run wrote nothing: there is nothing to undo", code="nothing_to_undo")
    earlier = await session.execute(
        select(BackgroundJob)
        .where(
            BackgroundJob.job_type == JobType.import_undo,
            BackgroundJob.params["undo_of"].astext == str(job.id),
        )
        .order_by(BackgroundJob.created_at.desc())
    )
    for undo in earlier.scalars():
        if undo.status is JobStatus.completed:
            raise Conflict(f"The import was already undone (job {undo.id})", code="already_undone")
        if undo.status in (JobStatus.pending, JobStatus.processing):
            return undo
    undo = await jobs_service.create(
        session,
        job_type=JobType.import_undo,
        params=undo_params(job.id),
        created_by=user.id,
    )
    raw = await jobs_service.raw_connection(session)
    undo.queue_job_id = await imports_tasks.run_import_undo.configure(
        connection=raw, lock=f"import:{job.id}"
    ).defer_async(job_id=str(undo.id))
    await audit_service.record(
        session,
        audit_service.Action.import_undo_requested,
        audit_service.Who(client, actor_id=user.id),
        {"import_job_id": str(job.id), "undo_job_id": str(undo.id)},
    )
    await session.flush()
    log.info("import.undo_requested", job_id=str(job.id), undo_job_id=str(undo.id))
    return undo
