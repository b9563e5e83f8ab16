"""`POST /files/csv-import`: start a customer import from an uploaded CSV file, or preview it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, status

from filestore.deps import SessionDep, SettingsDep, StaffUser, StorageDep
from filestore.errors import ALWAYS, error_responses
from filestore.imports import service as imports_service
from filestore.imports.schemas import CsvImportRequest, ImportPreview, ImportSpec
from filestore.jobs.schemas import JobCreated

router = APIRouter(
    prefix="/files", tags=["imports"], responses=error_responses(401, 403, 422, *ALWAYS)
)


@router.post(
    "/csv-import",
    response_model=JobCreated,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        (404, "The file does not exist (or is not yours)"),
        (422, "Not a CSV file, or a bad mapping"),
    ),
)
async def start_csv_import(
    request: CsvImportRequest,
    session: SessionDep,
    user: StaffUser,
    settings: SettingsDep,
) -> Any:
    """Start importing customers from an uploaded CSV; answers at once with the job id."""
    job = await imports_service.start(
        session,
        request=request,
        user=user,
        settings=settings,
        now=datetime.now(UTC),
    )
    return JobCreated(job_id=job.id, status=job.status.value, created_at=job.created_at)


@router.post(
    "/csv-import/preview",
    response_model=ImportPreview,
    responses=error_responses(
        (404, "The file does not exist (or is not yours)"),
        (422, "Not a CSV file or workbook, a bad mapping, or a file that cannot be read"),
    ),
)
async def preview_csv_import(
    request: ImportSpec,
    session: SessionDep,
    user: StaffUser,
    settings: SettingsDep,
    storage: StorageDep,
) -> Any:
    """Preview an import: how the file is read and mapped, and its first 20 rows' verdicts."""
    return await imports_service.preview(
        session,
        request=request,
        user=user,
        settings=settings,
        storage=storage,
        now=datetime.now(UTC),
    )
