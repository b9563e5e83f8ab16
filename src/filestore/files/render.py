"""The JSON of files (`FileOut`), written straight from database rows.

For the hot reads (a listing page, a file's metadata) and an upload's answer: no `FileOut` per
row, no response-model validation, one `pydantic_core.to_json` call, the same serialiser
FastAPI uses, so the bytes are those `FileOut` gives (tests/files/test_render.py compares
them). The routes keep `response_model=FileOut` for the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Response
from pydantic_core import to_json
from sqlalchemy import Row

from filestore.files.completion import CompletedFile
from filestore.files.models import FileUpload


def file_dict(row: Row[Any] | FileUpload | CompletedFile, base_url: str) -> dict[str, Any]:
    """`FileOut`'s fields, in its order, from a row of `files.queries.LISTED` (or an object
    with the same attributes: the ORM row, an upload's `CompletedFile`). `base_url` without
    its trailing slash."""
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


def files_json(rows: Iterable[Row[Any]], base_url: str) -> bytes:
    """A listing page: the seed's array of file objects."""
    base = base_url.rstrip("/")
    return to_json([file_dict(row, base) for row in rows])


def file_json(row: Row[Any] | FileUpload | CompletedFile, base_url: str) -> bytes:
    """One file's metadata."""
    return to_json(file_dict(row, base_url.rstrip("/")))
