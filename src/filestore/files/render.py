"""The JSON of files (`FileOut`), written straight from database rows.

For the hot reads (a listing page, a file's metadata): no `FileOut` per row, no response-model
validation, one `pydantic_core.to_json` call, the same serialiser FastAPI uses, so the bytes
are those `FileOut` gives (tests/files/test_render.py compares them). The routes keep
`response_model=FileOut` for the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Response
from pydantic_core import to_json

from filestore.files.queries import LISTED_WIDTH


def file_dict(row: Sequence[Any], base_url: str, start: int = 0) -> dict[str, Any]:
    """`FileOut`'s fields, in its order, from the columns of `files.queries.LISTED` that begin
    at position `start` of `row`. `base_url` without its trailing slash. By position, not by
    name: a `Row`'s attributes are looked up one by one in Python, and twenty rows of eighteen
    fields made this function the largest single item of a listing's profile."""
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
        "upload_status": upload_status.value,
        "scan_status": scan_status.value,
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


def json_response(body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, media_type="application/json", headers=headers)


def files_json(rows: Iterable[Sequence[Any]], base_url: str, start: int = 0) -> bytes:
    """A listing page: the seed's array of file objects."""
    base = base_url.rstrip("/")
    return to_json([file_dict(row, base, start) for row in rows])


def file_json(row: Sequence[Any], base_url: str, start: int = 0) -> bytes:
    """One file's metadata."""
    return to_json(file_dict(row, base_url.rstrip("/"), start))
