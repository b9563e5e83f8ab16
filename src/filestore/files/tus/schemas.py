"""Response bodies of `/files/tus`."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from filestore.files.schemas import FileOut
from filestore.files.tus.models import TusUpload
from filestore.schemas import Schema


class TusRejection(Schema):
    detail: str
    code: str


class TusUploadOut(Schema):
    id: str
    status: str = Field(description="uploading, completed or rejected")
    filename: str
    upload_offset: int
    upload_length: int | None = Field(description="None while the length is deferred")
    expires_at: datetime | None = Field(description="When an unfinished upload is dropped")
    file: FileOut | None = Field(description="The stored file, once complete")
    rejection: TusRejection | None = Field(description="Why verification refused the upload")

    @classmethod
    def of(cls, upload: TusUpload, file: FileOut | None) -> TusUploadOut:
        rejection = None
        if upload.rejection_code is not None:
            rejection = TusRejection(
                detail=upload.rejection_detail or "", code=upload.rejection_code
            )
        return cls(
            id=upload.id,
            status=upload.status.value,
            filename=upload.filename,
            upload_offset=upload.upload_offset,
            upload_length=upload.upload_length,
            expires_at=upload.expires_at if upload.file_id is None else None,
            file=file,
            rejection=rejection,
        )
