"""`/files/tus`: resumable uploads (tus 1.0.0). Headers in, headers out; the work is in
`files/tus/`: `service.py` (records, lease), `patch.py` (one request's bytes) and `complete.py`
(the last byte).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from starlette.requests import ClientDisconnect

from filestore.deps import CurrentUser, SessionDep, StandaloneUser, StateDep
from filestore.errors import ALWAYS, BadRequest, FilestoreError, error_responses
from filestore.files.router import base_url, to_out
from filestore.files.tus import appender as tus_appender
from filestore.files.tus import docs, protocol
from filestore.files.tus import patch as tus_patch
from filestore.files.tus import service as tus_service
from filestore.files.tus.models import TusStatus, TusUpload
from filestore.files.tus.schemas import TusUploadOut
from filestore.requests import ClientInfo, client_of

router = APIRouter(
    prefix="/files/tus",
    tags=["resumable uploads (tus)"],
    responses=error_responses(401, 422, *ALWAYS),
)

UploadId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The upload's id")]


def _now() -> datetime:
    return datetime.now(UTC)


def _ctx(state: StateDep, user: StandaloneUser, client: ClientInfo) -> tus_patch.TusContext:
    return tus_patch.TusContext(
        settings=state.settings,
        storage=state.storage,
        sessionmaker=state.sessionmaker,
        user=user,
        now=_now(),
        client=client,
    )


def _content_length(request: Request) -> int | None:
    return protocol.parse_size("Content-Length", request.headers.get("content-length"))


def _appended_headers(appended: tus_patch.Appended) -> dict[str, str]:
    headers = {
        **protocol.base_headers(),
        "Upload-Offset": str(appended.offset),
        "Upload-Expires": protocol.http_date(appended.expires_at),
    }
    if appended.file is not None:
        headers[protocol.FILE_ID_HEADER] = str(appended.file.id)
    return headers


@router.options("", status_code=204, response_class=Response, responses=docs.OPTIONS)
@router.options("/{upload_id}", status_code=204, response_class=Response, responses=docs.OPTIONS)
async def tus_options(state: StateDep) -> Response:
    """What this tus server speaks (no token needed)."""
    return Response(status_code=204, headers=protocol.options_headers(state.settings.max_file_size))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    openapi_extra=docs.TUS_HEADERS,
    responses=docs.CREATE,
)
async def create_upload(request: Request, state: StateDep, user: StandaloneUser) -> Response:
    """Create a resumable upload (`Upload-Length` or `Upload-Defer-Length: 1`, `Upload-Metadata`
    with the form's fields); a body sent with it is its first bytes (creation-with-upload)."""
    headers = request.headers
    dialect = protocol.dialect_of(headers)
    length = protocol.parse_size("Upload-Length", headers.get("upload-length"))
    deferred = headers.get("upload-defer-length")
    if (length is None) == (deferred is None) or (deferred is not None and deferred != "1"):
        raise BadRequest(
            "Send either Upload-Length or Upload-Defer-Length: 1", code="invalid_length"
        )
    pairs = protocol.parse_metadata(headers.get("upload-metadata"))
    now = _now()
    async with state.sessionmaker() as session:
        upload = await tus_service.create(
            session, settings=state.settings, user=user, pairs=pairs, length=length, now=now
        )
        await session.commit()
    location = f"{base_url(request, state.settings).rstrip('/')}/files/tus/{upload.id}"
    created = {
        **protocol.base_headers(),
        "Location": location,
        "Upload-Expires": protocol.http_date(upload.expires_at),
    }
    content_length = _content_length(request)
    has_body = bool(content_length) or "chunked" in headers.get("transfer-encoding", "")
    if not has_body:
        return Response(status_code=201, headers=created)
    try:
        protocol.check_patch_content_type(headers.get("content-type"), dialect)
        appended = await tus_patch.append(
            _ctx(state, user, client_of(request)),
            upload_id=upload.id,
            offset=0,
            length=None,
            checksum=protocol.parse_checksum(headers.get("upload-checksum")),
            complete=protocol.parse_complete(headers.get("upload-complete")),
            content_length=content_length,
            body=request.stream(),
        )
    except FilestoreError as exc:
        # The upload exists: tell the client where, so it can resume it.
        protocol.error_headers(exc, {"Location": location})
        raise
    except ClientDisconnect:
        return Response(status_code=201, headers=created)
    return Response(status_code=201, headers={**created, **_appended_headers(appended)})


@router.head(
    "/{upload_id}", response_class=Response, openapi_extra=docs.TUS_HEADERS, responses=docs.OFFSET
)
async def upload_offset(
    upload_id: UploadId, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    """The upload's offset (where to resume) and length."""
    dialect = protocol.dialect_of(request.headers)
    upload = await tus_service.get_owned(session, upload_id=upload_id, user=user, now=_now())
    _refuse_rejected(upload)
    headers = {
        **protocol.base_headers(),
        "Upload-Offset": str(upload.upload_offset),
        "Cache-Control": "no-store",
    }
    if upload.upload_length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(upload.upload_length)
    if upload.upload_metadata:
        headers["Upload-Metadata"] = protocol.encode_metadata(upload.upload_metadata)
    if upload.status is TusStatus.uploading:
        headers["Upload-Expires"] = protocol.http_date(upload.expires_at)
    if upload.file_id is not None:
        headers[protocol.FILE_ID_HEADER] = str(upload.file_id)
    if dialect is protocol.Dialect.ietf:
        headers["Upload-Complete"] = "?1" if upload.file_id is not None else "?0"
    return Response(status_code=200, headers=headers)


def _refuse_rejected(upload: TusUpload) -> None:
    if upload.status is TusStatus.rejected:
        raise protocol.Gone(
            upload.rejection_detail or "The upload was rejected",
            code=upload.rejection_code or "upload_rejected",
        )


@router.patch(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    openapi_extra=docs.TUS_HEADERS,
    responses=docs.APPEND,
)
async def append_bytes(
    upload_id: UploadId, request: Request, state: StateDep, user: StandaloneUser
) -> Response:
    """Append the body at `Upload-Offset`."""
    headers = request.headers
    dialect = protocol.dialect_of(headers)
    protocol.check_patch_content_type(headers.get("content-type"), dialect)
    offset = protocol.parse_size("Upload-Offset", headers.get("upload-offset"))
    if offset is None:
        raise BadRequest("Upload-Offset is required", code="invalid_header")
    try:
        appended = await tus_patch.append(
            _ctx(state, user, client_of(request)),
            upload_id=upload_id,
            offset=offset,
            length=protocol.parse_size("Upload-Length", headers.get("upload-length")),
            checksum=protocol.parse_checksum(headers.get("upload-checksum")),
            complete=protocol.parse_complete(headers.get("upload-complete")),
            content_length=_content_length(request),
            body=request.stream(),
        )
    except ClientDisconnect:
        return Response(status_code=204, headers=protocol.base_headers())
    return Response(status_code=204, headers=_appended_headers(appended))


@router.get("/{upload_id}", response_model=TusUploadOut, responses=docs.STATE)
async def get_upload(
    upload_id: UploadId, request: Request, state: StateDep, session: SessionDep, user: CurrentUser
) -> TusUploadOut:
    """The upload's state, and the stored file (the same JSON as POST /files/upload) once
    complete, or why it was rejected."""
    upload = await tus_service.get_owned(session, upload_id=upload_id, user=user, now=_now())
    file = None
    if upload.file_id is not None:
        from filestore.files.models import FileUpload

        row = await session.get(FileUpload, upload.file_id)
        if row is not None:
            file = to_out(row, base_url(request, state.settings))
    return TusUploadOut.of(upload, file)


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    openapi_extra=docs.TUS_HEADERS,
    responses=docs.TERMINATE,
)
async def terminate_upload(
    upload_id: UploadId, request: Request, state: StateDep, user: StandaloneUser
) -> Response:
    """Termination: an unfinished upload's bytes are removed at once. A completed upload's
    record is dropped; its file stays (DELETE /files/{id} removes that)."""
    protocol.dialect_of(request.headers)
    now = _now()
    async with state.sessionmaker() as session:
        upload, _ = await tus_service.acquire(session, upload_id=upload_id, user=user, now=now)
        if upload.status is TusStatus.uploading:
            await tus_appender.remove_stored(state.storage, upload)
        await session.delete(upload)
        await session.commit()
    return Response(status_code=204, headers=protocol.base_headers())
