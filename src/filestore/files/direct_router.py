"""`/files/direct-uploads`: reserve a presigned PUT straight to the store, then complete it."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response, status

from filestore.deps import CurrentUser, IdPath, SessionDep, StateDep
from filestore.files import direct
from filestore.files.router import BaseUrl, to_out
from filestore.files.schemas import DirectUploadIn, DirectUploadOut, FileOut

router = APIRouter(prefix="/files/direct-uploads", tags=["files"])


@router.post(
    "",
    response_model=DirectUploadOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "Backups are admin-only; customers upload only for themselves"},
        404: {"description": "customer_id or ticket_id not found"},
        409: {"description": "`direct_uploads_unavailable`: the store is not S3"},
        413: {"description": "Declared size larger than MAX_FILE_SIZE"},
        415: {"description": "Extension not allowed"},
    },
)
async def reserve_direct_upload(
    body: DirectUploadIn,
    session: SessionDep,
    state: StateDep,
    user: CurrentUser,
    response: Response,
) -> DirectUploadOut:
    """Check the upload as `POST /files/upload` would and answer a presigned PUT for exactly
    these bytes (size and SHA-256 are bound into the signature; it works once, ≤ 15 minutes)."""
    response.headers["Cache-Control"] = "no-store"
    reservation = await direct.reserve(
        session,
        settings=state.settings,
        storage=state.storage,
        user=user,
        request=body,
        now=datetime.now(UTC),
    )
    return DirectUploadOut(
        upload_id=reservation.row.id,
        method="PUT",
        url=reservation.url,
        headers=reservation.headers,
        expires_at=reservation.expires_at,
    )


@router.post(
    "/{upload_id}/complete",
    response_model=FileOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "Completed before: the same file"},
        404: {"description": "No such upload of yours"},
        409: {"description": "`upload_verifying` (ask again) or `upload_rejected`"},
        422: {"description": "The stored bytes differ from the declaration (the detail says how)"},
        503: {"description": "Store or scanner unavailable: nothing decided, try again"},
    },
)
async def complete_direct_upload(
    upload_id: IdPath, state: StateDep, user: CurrentUser, url: BaseUrl, response: Response
) -> FileOut:
    """Verify the uploaded bytes (size, SHA-256, type, virus scan) and make them a file."""
    row, created = await direct.complete(
        state.sessionmaker,
        settings=state.settings,
        storage=state.storage,
        user=user,
        upload_id=upload_id,
        now=datetime.now(UTC),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return to_out(row, url)
