"""Objects written across many requests: S3 multipart uploads driven by hand, and partial files
in the local store.

obstore streams one request's bytes into a multipart upload it opens and closes itself; it has no
call to resume an upload another request began. For that the minio SDK's multipart calls are
used (the same private-but-stable methods `leftovers.incomplete_uploads` already relies on),
in a worker thread as the SDK is synchronous. The parts themselves, all the bytes, are not
sent through the SDK: over plain HTTP it signs every payload, hashing each part with SHA-256
(a quarter of the API's CPU in a tus upload, py-spy, `docs/benchmarks.md`) and making the
store hash it again to check. They go as presigned `UploadPart` requests with an unsigned
payload (`presign.py`), on the SDK's own connection pool, from the list of chunks the request
received: no copy of the bytes either. With the local store (embedded default) the store
directory *is* the storage: a partial file is written in place at the offset the database gives,
then renamed to its final key.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import urllib3
    from minio import Minio

# (bucket, key, upload_id, part number) -> a presigned UploadPart URL
PartSigner = Callable[[str, str, str, int], str]
Chunks = Sequence[bytes | bytearray | memoryview]

# S3's smallest part (every part but the last must be at least this big).
MIN_PART_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class Part:
    """One completed part of a multipart upload."""

    number: int
    etag: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"n": self.number, "etag": self.etag, "size": self.size}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Part:
        return cls(number=int(value["n"]), etag=str(value["etag"]), size=int(value["size"]))


class S3Multipart:
    """One object's multipart upload on S3, resumable from any process by its upload id."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        key: str,
        *,
        http: urllib3.PoolManager | None = None,
        sign_part: PartSigner | None = None,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.key = key
        self._http = http
        self._sign_part = sign_part

    async def create(self, content_type: str) -> str:
        """Start the multipart upload; returns its id."""
        upload_id: str = await asyncio.to_thread(
            self._client._create_multipart_upload,
            self.bucket,
            self.key,
            {"Content-Type": content_type},
        )
        return upload_id

    async def upload_part(self, upload_id: str, number: int, chunks: Chunks) -> Part:
        """Upload `chunks`, joined, as part `number` (1..10000); a second upload of the same
        number replaces it."""
        size = sum(len(chunk) for chunk in chunks)
        if self._http is None or self._sign_part is None:
            data = b"".join(chunks)
            etag: str = await asyncio.to_thread(
                self._client._upload_part, self.bucket, self.key, data, None, upload_id, number
            )
        else:
            url = self._sign_part(self.bucket, self.key, upload_id, number)
            etag = await asyncio.to_thread(_put_part, self._http, url, list(chunks), size)
        return Part(number=number, etag=etag, size=size)

    async def complete(self, upload_id: str, parts: list[Part]) -> None:
        """Join `parts`, in order, into the object; parts uploaded but not listed are dropped."""
        from minio.datatypes import Part as MinioPart

        listed = [MinioPart(part.number, part.etag) for part in parts]
        await asyncio.to_thread(
            self._client._complete_multipart_upload, self.bucket, self.key, upload_id, listed
        )

    async def abort(self, upload_id: str) -> None:
        """Drop the upload and every part of it; an upload already gone is not an error."""
        from minio.error import S3Error

        try:
            await asyncio.to_thread(
                self._client._abort_multipart_upload, self.bucket, self.key, upload_id
            )
        except S3Error as exc:
            if exc.code != "NoSuchUpload":
                raise


def _put_part(http: urllib3.PoolManager, url: str, chunks: list[Any], size: int) -> str:
    """PUT `chunks` (sent one after another, not joined) to a presigned UploadPart URL; the
    part's ETag. Errors as the SDK raises them: S3Error (4xx), ServerError (5xx)."""
    from minio.error import S3Error, ServerError

    response = http.request(
        "PUT", url, body=chunks, headers={"Content-Length": str(size)}, preload_content=True
    )
    if response.status >= 500:
        raise ServerError(f"UploadPart answered {response.status}", response.status)
    if response.status != 200:
        if response.data:
            raise S3Error.fromxml(response)
        raise ServerError(f"UploadPart answered {response.status}", response.status)
    return str(response.headers.get("ETag", "")).replace('"', "")


class LocalPartial:
    """A partial file in the local store, written in place; the database says how much counts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _open_at(self, offset: int) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "r+b" if self.path.exists() else "w+b")
        # Bytes past the committed offset belong to a request that failed: they never count.
        handle.truncate(offset)
        handle.seek(offset)
        return handle

    async def open_at(self, offset: int) -> Any:
        """A binary file handle positioned at `offset`, with anything after it cut off."""
        return await asyncio.to_thread(self._open_at, offset)

    @staticmethod
    async def write(handle: Any, data: bytes | bytearray | memoryview) -> None:
        await asyncio.to_thread(handle.write, data)

    @staticmethod
    def _sync_and_close(handle: Any) -> int:
        handle.flush()
        os.fsync(handle.fileno())
        size = int(handle.tell())
        handle.close()
        return size

    @classmethod
    async def close(cls, handle: Any) -> int:
        """Flush to disk and close; returns the file position (the new offset)."""
        return await asyncio.to_thread(cls._sync_and_close, handle)

    @staticmethod
    async def discard(handle: Any) -> None:
        await asyncio.to_thread(handle.close)

    async def finish(self, target: Path) -> None:
        """Move the complete file to its final place in the store."""

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.path.replace(target)

        await asyncio.to_thread(move)

    async def remove(self) -> None:
        await asyncio.to_thread(self.path.unlink, missing_ok=True)
