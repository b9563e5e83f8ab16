"""The JSON of files (`FileOut`), written straight from database rows.

For the hot reads (a listing page, a file's metadata) and an upload's answer: no `FileOut` per
row, no response-model validation, one `pydantic_core.to_json` call, the same serialiser
FastAPI uses, so the bytes are those `FileOut` gives (tests/files/test_render.py compares
them). The routes keep `response_model=FileOut` for the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Response
from pydantic_core import to_json
from sqlalchemy import Row

from filestore.files.completion import CompletedFile
from filestore.files.models import FileUpload
from filestore.files.queries import LISTED_WIDTH


def file_dict(row: Row[Any] | FileUpload | CompletedFile, base_url: str) -> dict[str, Any]:
    """`FileOut`'s fields, in its order, from an object with the attributes of
    `files.queries.LISTED` (the ORM row, an upload's `CompletedFile`). `base_url` without its
    trailing slash. The hot reads use `row_dict`."""
    return {
        "id": row.id,
        "filename": row.filename,
        "file_size": row.file_size,
        "mime_type": row.mime_type,
        "file_type": row.file_type,
        "upload_status": row.upload_status.value,
        "scan_status": row.scan_status.value,
        "url": f"{base_url}/files/download/{row.id}",
        "created_at": row.created_at,
        "md5": row.md5,
        "sha256": row.sha256,
        "bucket": row.bucket,
        "customer_id": row.customer_id,
        "ticket_id": row.ticket_id,
        "service_id": row.service_id,
        "metadata": row.metadata_,
        "expires_at": row.expires_at,
        "uploaded_by": row.uploaded_by,
    }


def json_response(
    body: bytes, headers: dict[str, str] | None = None, *, status_code: int = 200
) -> Response:
    return Response(
        content=body, status_code=status_code, media_type="application/json", headers=headers
    )


def file_json(row: Row[Any] | FileUpload | CompletedFile, base_url: str) -> bytes:
    """One file's metadata (an upload's answer)."""
    return to_json(file_dict(row, base_url.rstrip("/")))


def row_dict(row: Sequence[Any], base_url: str, start: int = 0) -> dict[str, Any]:
    """`file_dict` from the columns of `files.queries.LISTED` that begin at position `start` of
    `row`. By position, not by name: a `Row`'s attributes are looked up one by one in Python,
    and twenty rows of eighteen fields made `file_dict` the largest single item of a listing's
    profile."""
    (
        file_id,
        filename,
        file_size,
        mime_type,
        file_type,
        upload_status,
        scan_status,
        created_at,
        md5,
        sha256,
        bucket,
        customer_id,
        ticket_id,
        service_id,
        metadata,
        expires_at,
        uploaded_by,
    ) = row[start : start + LISTED_WIDTH]
    return {
        "id": file_id,
        "filename": filename,
        "file_size": file_size,
        "mime_type": mime_type,
        "file_type": file_type,
        # Strings from `db_direct` (an enum from an ORM row is written as its value too).
        "upload_status": upload_status,
        "scan_status": scan_status,
        "url": f"{base_url}/files/download/{file_id}",
        "created_at": created_at,
        "md5": md5,
        "sha256": sha256,
        "bucket": bucket,
        "customer_id": customer_id,
        "ticket_id": ticket_id,
        "service_id": service_id,
        "metadata": metadata,
        "expires_at": expires_at,
        "uploaded_by": uploaded_by,
    }


def rows_json(rows: Iterable[Sequence[Any]], base_url: str, start: int = 0) -> bytes:
    """A listing page, the seed's array of file objects, from rows whose `LISTED` columns
    begin at `start`."""
    base = base_url.rstrip("/")
    return to_json([row_dict(row, base, start) for row in rows])


def row_json(row: Sequence[Any], base_url: str, start: int = 0) -> bytes:
    """One file's metadata from a row whose `LISTED` columns begin at `start`."""
    return to_json(row_dict(row, base_url.rstrip("/"), start))
