"""`POST /files/csv-import`: start a customer import from an uploaded CSV file, or preview it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, status

from filestore.deps import ClientDep, SessionDep, SettingsDep, StaffUser, StorageDep
from filestore.errors import ALWAYS, error_responses
from filestore.imports import mappings as imports_mappings
from filestore.imports import service as imports_service
from filestore.imports.schemas import (
    CsvImportRequest,
    ImportPreview,
    ImportSpec,
    MappingTemplateIn,
    MappingTemplateOut,
)
from filestore.jobs.schemas import JobCreated

router = APIRouter(
    prefix="/files", tags=["imports"], responses=error_responses(401, 403, 422, *ALWAYS)
)


@router.post(
    "/csv-import",
    response_model=JobCreated,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        (404, "The file (or the named mapping template) does not exist"),
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
        (404, "The file (or the named mapping template) does not exist"),
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


@router.post(
    "/csv-import/mappings",
    response_model=MappingTemplateOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses((409, "A template with this name exists")),
)
async def create_mapping_template(
    template: MappingTemplateIn, session: SessionDep, user: StaffUser
) -> Any:
    """Save a mapping template that later imports name with `mapping_template`."""
    return await imports_mappings.create(session, template=template, user=user)


@router.get("/csv-import/mappings", response_model=list[MappingTemplateOut])
async def list_mapping_templates(session: SessionDep, user: StaffUser) -> Any:
    """The saved mapping templates, by name."""
    return await imports_mappings.list_all(session)


@router.post(
    "/jobs/{job_id}/undo",
    response_model=JobCreated,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(
        (404, "The job does not exist"),
        (409, "Not undoable: still running, failed, a dry run, not an import, already undone"),
    ),
)
async def undo_import(
    job_id: uuid.UUID, session: SessionDep, user: StaffUser, client: ClientDep
) -> Any:
    """Undo an import: remove the customers it created and restore those it updated (a job;
    asking again while it runs answers the same job)."""
    job = await imports_service.request_undo(session, job_id=job_id, user=user, client=client)
    return JobCreated(job_id=job.id, status=job.status.value, created_at=job.created_at)
