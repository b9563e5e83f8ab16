"""`/files`: multipart upload, download, metadata, listing, deletion (direct transfers:
`direct_router.py`; tus: `tus_router.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy import Row

from filestore import pagination
from filestore.audit import service as audit_service
from filestore.deps import (
    ClientDep,
    CurrentUser,
    IdPath,
    Reading,
    ReadingDep,
    ReadingUser,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    StandalonePrincipal,
    StorageDep,
    get_state,
)
from filestore.errors import ALWAYS, error_responses
from filestore.files import pacing, queries, render
from filestore.files import reads as files_reads
from filestore.files import service as files_service
from filestore.files import upload as upload_pipeline
from filestore.files.download import direct_link, file_response
from filestore.files.models import FileUpload
from filestore.files.schemas import FileOut
from filestore.pagination import CURSOR_MAX_LENGTH, NEXT_CURSOR_HEADER
from filestore.requests import client_of
from filestore.schemas import PageOffset
from filestore.settings import Settings

router = APIRouter(prefix="/files", tags=["files"], responses=error_responses(401, 422, *ALWAYS))

_UPLOAD_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "file_type": {"type": "string", "example": "document"},
                        "customer_id": {"type": "integer"},
                        "ticket_id": {"type": "integer"},
                        "service_id": {"type": "integer"},
                        "metadata": {"type": "string", "description": "JSON object"},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "checksum_sha256": {"type": "string", "description": "verified if given"},
                    },
                }
            }
        },
    }
}


def now() -> datetime:
    return datetime.now(UTC)


def to_out(file: FileUpload | Row[Any], base_url: str) -> FileOut:
    """The API's view of a file, from its row object or a row of `files.queries.LISTED`."""
    return FileOut(
        id=file.id,
        filename=file.filename,
        file_size=file.file_size,
        mime_type=file.mime_type,
        file_type=file.file_type,
        upload_status=file.upload_status.value,
        scan_status=file.scan_status.value,
        url=f"{base_url.rstrip('/')}/files/download/{file.id}",
        created_at=file.created_at,
        md5=file.md5,
        sha256=file.sha256,
        bucket=file.bucket,
        customer_id=file.customer_id,
        ticket_id=file.ticket_id,
        service_id=file.service_id,
        metadata=file.metadata_,
        expires_at=file.expires_at,
        uploaded_by=file.uploaded_by,
    )


def base_url(request: Request, settings: Settings) -> str:
    return settings.public_base_url or str(request.base_url)


async def _base_url(request: Request, settings: SettingsDep) -> str:
    return base_url(request, settings)


BaseUrl = Annotated[str, Depends(_base_url)]


async def visible_file(
    file_id: IdPath, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> FileUpload:
    """This file, if it is live and the caller may see it; 404 otherwise."""
    return await files_service.get_visible(
        session, file_id=file_id, user=user, settings=settings, now=now()
    )


async def readable_file(
    file_id: IdPath, session: ReadSessionDep, user: ReadingUser, settings: SettingsDep
) -> FileUpload:
    """`visible_file` for the routes that only read: no transaction."""
    return await files_service.get_visible(
        session, file_id=file_id, user=user, settings=settings, now=now()
    )


VisibleFile = Annotated[FileUpload, Depends(visible_file)]
ReadableFile = Annotated[FileUpload, Depends(readable_file)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[PageOffset, Query()]
Cursor = Annotated[
    str | None,
    Query(
        max_length=CURSOR_MAX_LENGTH,
        description=f"Continue after the page whose response carried this `{NEXT_CURSOR_HEADER}`"
        " header (keyset pagination: every page costs the same; combine with `limit`)",
    ),
]


@router.post(
    "/upload",
    response_model=FileOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_FORM,
    responses=error_responses(
        (403, "Backups are admin-only; customers upload only for themselves"),
        (404, "customer_id or ticket_id not found"),
        (408, "`client_idle` or `client_too_slow`: the body stalled (UPLOAD_IDLE_TIMEOUT_SECONDS)"),
        (413, "File larger than MAX_FILE_SIZE"),
        (415, "Extension not allowed, or content does not match it"),
        (422, "Empty file, bad field, checksum mismatch, `virus_found`"),
        (503, "Database or object storage unavailable, or `scanner_unavailable`"),
    ),
)
async def upload_file(request: Request, user: StandalonePrincipal) -> Response:
    """Upload one file (multipart), streamed to object storage as it arrives."""
    # The state, base URL and client are read here rather than as `Depends`: FastAPI's
    # dependency solving was ~4% of a 4 KiB upload's server CPU, and the answer is written
    # from the row (`render`, the bytes `FileOut` gives) without revalidating a model.
    state = await get_state(request)
    ctx = upload_pipeline.UploadContext(
        settings=state.settings,
        storage=state.storage,
        sessionmaker=state.sessionmaker,
        user=user,
        now=now(),
        client=client_of(request),
        reader=state.reader,
    )
    length = request.headers.get("content-length")
    row = await upload_pipeline.receive(
        ctx,
        content_type=request.headers.get("content-type"),
        content_length=int(length) if length and length.isdigit() else None,
        body=pacing.paced(request.stream(), pacing.Pace.of(state.settings)),
    )
    body = render.file_json(row, base_url(request, state.settings))
    return render.json_response(body, status_code=status.HTTP_201_CREATED)


# The bytes go out with the content type the upload was stored with (image/png, text/csv...).
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file's bytes, with its stored content type", "content": _BYTES},
    206: {"description": "Part of the file (Range)", "content": _BYTES},
    307: {
        "description": "`redirect=true` on S3: a presigned link to the store",
        "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
    },
    **error_responses(404, 416),
}


# Two registrations rather than one with methods=["GET", "HEAD"]: each method needs its own
# OpenAPI operation id, or the schema has a duplicate that generated clients trip over.
@router.get("/download/{file_id}", response_class=Response, responses=_DOWNLOAD_RESPONSES)
@router.head(
    "/download/{file_id}",
    response_class=Response,
    responses=_DOWNLOAD_RESPONSES,
    operation_id="head_download_file",
)
async def download_file(
    request: Request,
    reading: ReadingDep,
    file_id: IdPath,
    inline: bool = Query(default=False, description="Show images/PDF inline in a browser"),
    redirect: bool = Query(
        default=False,
        description="On S3, answer 307 to a presigned link (the bytes skip the API); "
        "with the local store the file is streamed as without it",
    ),
    range_header: str | None = Header(default=None, alias="Range"),
    if_none_match: str | None = Header(default=None, alias="If-None-Match"),
    if_range: str | None = Header(default=None, alias="If-Range"),
) -> Response:
    """Stream the file's bytes; supports Range, If-None-Match and If-Range."""
    settings, storage, client = reading.settings, reading.state.storage, reading.client()
    # A GET is audited by the statement that checks the token and finds the file (one round
    # trip); a link once it exists (or, from a store without links, the download after it),
    # a HEAD not at all.
    details = {"range": range_header[:100]} if range_header else None
    downloaded = files_reads.AccessEvent(audit_service.Action.file_downloaded, client, details)
    event = downloaded if request.method == "GET" and not redirect else None
    user, file = await files_reads.read_served(
        reading.connection,
        reading.claims,
        file_id=file_id,
        settings=settings,
        now=now(),
        event=event,
    )
    reading.acting(user)
    if redirect:
        link = direct_link(
            file, storage, ttl_seconds=settings.download_url_ttl_seconds, inline=inline, now=now()
        )
        if link is not None:
            await files_service.record_access_at_once(  # written, then logged
                reading.connection,
                audit_service.Action.file_link_issued,
                file=file,
                user=user,
                client=client,
            )
            return RedirectResponse(
                link.url, status_code=307, headers={"Cache-Control": "no-store"}
            )
        if request.method == "GET":
            await files_service.record_access_at_once(
                reading.connection,
                downloaded.action,
                file=file,
                user=user,
                client=client,
                details=details,
            )
    return await file_response(
        file,
        storage,
        range_header=range_header,
        if_none_match=if_none_match,
        if_range=if_range,
        inline=inline,
        head=request.method == "HEAD",
        cache=reading.state.object_cache,
    )


@dataclass
class Listing:
    """What both file listings need: the request's reading (token, session), and a page."""

    reading: Reading
    limit: int
    offset: int
    cursor: str | None

    async def files(self, owner: queries.Owner, owner_id: int) -> Response:
        """The page as JSON, written from the rows (`files.render`); 401 if the token no
        longer speaks for anyone, 404 if the owner does not exist or the caller may not see
        it. The token check and the page are one statement (`files.queries.caller_listing`)."""
        after = pagination.decode(self.cursor) if self.cursor else None
        reading = self.reading
        user, files = await files_reads.read_listing(
            reading.connection,
            reading.claims,
            owner,
            owner_id,
            settings=reading.settings,
            now=now(),
            limit=self.limit,
            offset=self.offset,
            after=after,
        )
        reading.acting(user)
        headers = None
        if len(files) == self.limit:
            last = files[-1]
            headers = {NEXT_CURSOR_HEADER: pagination.encode(last.created_at, last.id)}
        return render.json_response(
            render.rows_json(files, reading.base_url, queries.LISTING_START), headers
        )


async def _listing(
    reading: ReadingDep,  # no transaction: the listing is one statement (`files.queries`)
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Cursor = None,
) -> Listing:
    # A function, not `Depends()` on the class: FastAPI calls a class in a worker thread.
    return Listing(reading, limit, offset, cursor)


ListingDep = Annotated[Listing, Depends(_listing)]


@router.get("/customer/{customer_id}", response_model=list[FileOut], responses=error_responses(404))
async def list_customer_files(customer_id: IdPath, listing: ListingDep) -> Response:
    """A customer's files, newest first."""
    return await listing.files(queries.Owner.customer, customer_id)


@router.get("/ticket/{ticket_id}", response_model=list[FileOut], responses=error_responses(404))
async def list_ticket_files(ticket_id: IdPath, listing: ListingDep) -> Response:
    """A ticket's files, newest first."""
    return await listing.files(queries.Owner.ticket, ticket_id)


@router.get("/{file_id}", response_model=FileOut, responses=error_responses(404))
async def get_file(file_id: IdPath, reading: ReadingDep) -> Response:
    """A file's metadata."""
    user, row = await files_reads.read_visible_row(
        reading.connection, reading.claims, file_id=file_id, settings=reading.settings, now=now()
    )
    reading.acting(user)
    return render.json_response(render.row_json(row, reading.base_url, queries.FILE_ROW_START))


@router.delete(
    "/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses((403, "Customers delete only their own uploads"), 404),
)
async def delete_file(
    file: VisibleFile,
    session: SessionDep,
    user: CurrentUser,
    storage: StorageDep,
    client: ClientDep,
) -> Response:
    """Delete a file: its object is removed and the row marked deleted."""
    files_service.check_may_delete(file, user)
    await files_service.delete(
        session, file=file, storage=storage, now=now(), user=user, client=client
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
