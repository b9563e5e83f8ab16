"""S3 multipart uploads that were begun and never completed nor aborted: listing them and
aborting them, for the cleanup sweep. The local store has none."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from filestore.storage.errors import missing_bucket, transport_errors_as_unavailable
from filestore.storage.store import ObjectStorage


@dataclass(frozen=True)
class IncompleteUpload:
    key: str
    upload_id: str
    initiated: datetime | None


async def incomplete_uploads(storage: ObjectStorage, bucket: str) -> list[IncompleteUpload]:
    """Multipart uploads of `bucket` begun and never completed nor aborted (S3 only; none
    locally); `BucketMissing` if the bucket does not exist."""
    minio = storage.s3_client
    if minio is None:
        return []
    found: list[IncompleteUpload] = []
    key_marker: str | None = None
    upload_marker: str | None = None
    while True:
        # The minio SDK reaches ListMultipartUploads only through this private method.
        with missing_bucket(bucket), transport_errors_as_unavailable("list_uploads"):
            result = await asyncio.to_thread(
                minio._list_multipart_uploads,
                bucket,
                key_marker=key_marker,
                upload_id_marker=upload_marker,
                max_uploads=1000,
            )
        found.extend(
            IncompleteUpload(
                key=u.object_name, upload_id=u.upload_id or "", initiated=u.initiated_time
            )
            for u in result.uploads
        )
        # minio 7.2 never fills next_upload_id_marker; paging by key alone still ends.
        if (
            not result.is_truncated
            or not result.next_key_marker
            or result.next_key_marker == key_marker
        ):
            return found
        key_marker = result.next_key_marker
        upload_marker = getattr(result, "next_upload_id_marker", None)


async def abort_upload(storage: ObjectStorage, bucket: str, upload: IncompleteUpload) -> None:
    minio = storage.s3_client
    if minio is not None:
        with transport_errors_as_unavailable("abort_upload"):
            await asyncio.to_thread(
                minio._abort_multipart_upload, bucket, upload.key, upload.upload_id
            )
