"""`/files` routes whose bytes skip the API: a presigned download link, and direct uploads
(reserve a presigned PUT, then complete: verify and record)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from filestore.audit import service as audit_service
from filestore.deps import (
    ClientDep,
    CurrentUser,
    IdPath,
    ReadingUser,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    StandaloneUser,
    StateDep,
    StorageDep,
)
from filestore.errors import ALWAYS, error_responses
from filestore.files import direct
from filestore.files import service as files_service
from filestore.files.download import direct_link
from filestore.files.router import BaseUrl, ReadableFile, now, to_out
from filestore.files.schemas import DirectUploadIn, DirectUploadOut, DownloadUrlOut, FileOut

router = APIRouter(prefix="/files", tags=["files"], responses=error_responses(401, 422, *ALWAYS))


@router.get(
    "/{file_id}/download-url", response_model=DownloadUrlOut, responses=error_responses(404)
)
async def download_url(
    file: ReadableFile,
    base: BaseUrl,
    storage: StorageDep,
    settings: SettingsDep,
    response: Response,
    session: ReadSessionDep,
    user: ReadingUser,
    client: ClientDep,
    inline: bool = Query(default=False, description="Show images/PDF inline in a browser"),
) -> DownloadUrlOut:
    """A link to the file's bytes: presigned to the store on S3 (for clients that fetch it
    themselves, e.g. a browser `<a href>`), the API's own link with the local store."""
    response.headers["Cache-Control"] = "no-store"
    link = direct_link(
        file, storage, ttl_seconds=settings.download_url_ttl_seconds, inline=inline, now=now()
    )
    if link is None:
        api_url = f"{base.rstrip('/')}/files/download/{file.id}"
        return DownloadUrlOut(url=api_url, expires_at=None, direct=False)
    await files_service.record_access(
        session,
        audit_service.Action.file_link_issued,
        file=file,
        user=user,
        client=client,
        read_session=True,
    )
    return DownloadUrlOut(url=link.url, expires_at=link.expires_at, direct=True)


@router.post(
    "/direct-uploads",
    response_model=DirectUploadOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        (403, "Backups are admin-only; customers upload only for themselves"),
        (404, "customer_id or ticket_id not found"),
        (409, "`direct_uploads_unavailable`: the store is not S3"),
        (413, "Declared size larger than MAX_FILE_SIZE"),
        (415, "Extension not allowed"),
    ),
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
        now=now(),
    )
    return DirectUploadOut(
        upload_id=reservation.row.id,
        method="PUT",
        url=reservation.url,
        headers=reservation.headers,
        expires_at=reservation.expires_at,
    )


@router.post(
    "/direct-uploads/{upload_id}/complete",
    response_model=FileOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": FileOut, "description": "Completed before: the same file"},
        **error_responses(
            (404, "No such upload of yours"),
            (409, "`upload_verifying` (ask again) or `upload_rejected`"),
            (422, "The stored bytes differ from the declaration (the detail says how)"),
            (503, "Store or scanner unavailable: nothing decided, try again"),
        ),
    },
)
async def complete_direct_upload(
    upload_id: IdPath,
    state: StateDep,
    user: StandaloneUser,
    url: BaseUrl,
    response: Response,
    client: ClientDep,
) -> FileOut:
    """Verify the uploaded bytes (size, SHA-256, type, virus scan) and make them a file."""
    row, created = await direct.complete(
        state.sessionmaker,
        settings=state.settings,
        storage=state.storage,
        user=user,
        upload_id=upload_id,
        now=now(),
        client=client,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return to_out(row, url)
