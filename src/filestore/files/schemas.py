"""Response bodies of `/files`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from filestore.schemas import Schema


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
