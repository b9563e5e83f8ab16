"""Response bodies of `/files`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from filestore.schemas import Schema, StrictInput


class FileOut(Schema):
    id: int
    filename: str
    file_size: int
    mime_type: str
    file_type: str
    upload_status: str
    scan_status: str = Field(
        description="clean: clamd found nothing; unscanned: scanning is on but clamd could not "
        "scan it (accepted because VIRUS_SCAN_FAIL_OPEN); disabled: stored while VIRUS_SCAN=off"
    )
    url: str = Field(description="Download link for this file (needs the bearer token)")
    created_at: datetime
    md5: str
    sha256: str
    bucket: str
    customer_id: int | None
    ticket_id: int | None
    service_id: int | None
    metadata: dict[str, Any]
    expires_at: datetime | None
    uploaded_by: int | None


class DownloadUrlOut(Schema):
    url: str = Field(
        description="Where to GET the file: a presigned link to the store (no token needed) or, "
        "with the local store, the API's download link (needs the bearer token)"
    )
    expires_at: datetime | None = Field(description="When a presigned link stops working")
    direct: bool = Field(description="True when the link goes straight to the store")


class DirectUploadIn(StrictInput):
    """What the client will PUT: the presigned request binds the size and the SHA-256."""

    filename: str = Field(min_length=1, max_length=255)
    file_size: int = Field(ge=1, description="Exact size in bytes (bound into the signature)")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="Hex SHA-256 of the bytes")
    file_type: str | None = None
    customer_id: int | None = None
    ticket_id: int | None = None
    service_id: int | None = None
    metadata: dict[str, Any] | None = None
    expires_at: datetime | None = None


class DirectUploadOut(Schema):
    upload_id: int = Field(description="Complete it with POST /files/direct-uploads/{id}/complete")
    method: str = Field(description="Always PUT")
    url: str = Field(description="Presigned; works until `expires_at`, for these bytes only")
    headers: dict[str, str] = Field(description="Send exactly these headers with the PUT")
    expires_at: datetime
