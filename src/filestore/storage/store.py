"""The object store: obstore for every byte (S3/MinIO or a local directory), minio for buckets.

obstore streams an async iterator straight into a multipart upload and aborts that upload
when the iterator raises, so a failed upload leaves nothing behind. It cannot create buckets
or copy across buckets, which is what the minio SDK is used for (control plane only). The
clients are built in `s3_clients.py`.

Transport errors of either client leave this class as `StorageUnavailable` (see `errors.py`);
a missing object stays `FileNotFoundError`/`NotFoundError`, and anything else (credentials,
bucket, configuration) passes through unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
import structlog
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore

from filestore.settings import Settings
from filestore.storage import s3_clients
from filestore.storage.errors import (
    BucketMissing,
    StorageUnavailable,
    WatchedSource,
    as_unavailable,
    missing_bucket,
    transport_errors_as_unavailable,
)
from filestore.storage.presign import Credentials, presign

if TYPE_CHECKING:
    import urllib3
    from minio import Minio
    from obstore import Attributes, GetOptions

log = structlog.get_logger(__name__)

HEALTH_PROBE_KEY = ".filestore-health-probe"
DOWNLOAD_CHUNK_SIZE = 1024 * 1024
# A resumable upload's part is sent right after its URL is signed.
PART_URL_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class ListedObject:
    key: str
    last_modified: datetime
    size: int


@dataclass(frozen=True)
class StoredObject:
    """An open object ready to stream: `size` is the length of what `chunks` will yield."""

    chunks: AsyncIterator[bytes | memoryview]
    size: int


class ObjectStorage:
    """All buckets of one deployment, S3-compatible or local, behind one small API."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._buckets = sorted(set(settings.buckets.values()))
        self._stores: dict[str, Any] = {}
        self._minio: Minio | None = None
        self._signer: Minio | None = None
        self._public_url: str | None = None
        self._internal_url: str | None = None
        self._http: urllib3.PoolManager | None = None
        self._local_root: Path | None = None
        if settings.uses_s3:
            s3 = s3_clients.build(settings, self._buckets)
            self._stores.update(s3.stores)
            self._minio, self._signer, self._http = s3.minio, s3.signer, s3.http
            self._internal_url, self._public_url = s3.internal_url, s3.public_url
        else:
            self._local_root = settings.objects_dir.resolve()

    @property
    def kind(self) -> str:
        return "s3" if self._minio is not None else "local"

    @property
    def lists_in_key_order(self) -> bool:
        """S3 lists keys in order; the local store in directory order."""
        return self._local_root is None

    def _store(self, bucket: str) -> Any:
        store = self._stores.get(bucket)
        if store is None:
            if self._local_root is None:
                raise ValueError(f"unknown bucket {bucket!r}")
            store = LocalStore(prefix=self._local_root / bucket, mkdir=True, automatic_cleanup=True)
            self._stores[bucket] = store
        return store

    async def ensure_buckets(self) -> None:
        """Create every configured bucket that is missing (idempotent, like `minio-setup`)."""
        if self._minio is None:
            assert self._local_root is not None
            for bucket in self._buckets:
                (self._local_root / bucket).mkdir(parents=True, exist_ok=True)
            return
        from minio.error import S3Error

        minio = self._minio
        for bucket in self._buckets:
            with transport_errors_as_unavailable("ensure_buckets"):
                exists = await asyncio.to_thread(minio.bucket_exists, bucket)
                if exists:
                    continue
                try:
                    await asyncio.to_thread(minio.make_bucket, bucket)
                except S3Error as exc:
                    # Another API process created it between our check and our create.
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
            log.info("storage.bucket_created", bucket=bucket)

    async def put_stream(
        self, bucket: str, key: str, chunks: AsyncIterator[memoryview], *, content_type: str
    ) -> None:
        """Stream `chunks` into `bucket/key`; if the iterator raises, nothing is kept and its
        exception is not taken for a storage error."""
        # The local store cannot keep attributes; its Content-Type lives in the database anyway.
        attributes: Attributes | None = {"Content-Type": content_type} if self._minio else None
        source = WatchedSource(chunks)
        try:
            await obstore.put_async(
                self._store(bucket),
                key,
                source,
                attributes=attributes,
                chunk_size=self._settings.upload_chunk_size,
                max_concurrency=self._settings.upload_concurrency,
            )
        except Exception as exc:
            # A source that failed (client gone, size overrun, scanner) is not the store's fault.
            unavailable = None if source.error is not None else as_unavailable(exc, "put")
            if unavailable is None:
                raise
            raise unavailable from exc

    async def open(
        self, bucket: str, key: str, *, start: int = 0, end: int | None = None
    ) -> StoredObject:
        """Open `bucket/key` for streaming, optionally only bytes `start..end` (end exclusive)."""
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        with transport_errors_as_unavailable("get"):
            result = await obstore.get_async(self._store(bucket), key, options=options)
        first, last = result.range
        return StoredObject(
            chunks=_as_chunks(result.stream(DOWNLOAD_CHUNK_SIZE)), size=last - first
        )

    def presigned_get(
        self, bucket: str, key: str, *, expires: timedelta, response_headers: dict[str, str]
    ) -> str | None:
        """A time-limited GET link straight to the store (`response_headers` are the S3
        `response-content-*` overrides), or None for the local store: it has no URL of its own."""
        if self._signer is None:
            return None
        overrides: dict[str, str | list[str] | tuple[str]] = dict(response_headers)
        url: str = self._signer.presigned_get_object(
            bucket, key, expires=expires, response_headers=overrides
        )
        return url

    def presigned_put(
        self, bucket: str, key: str, *, expires: timedelta, headers: dict[str, str]
    ) -> str | None:
        """A time-limited PUT link to `bucket/key` whose signature also binds `headers` (the
        client must send each with exactly this value), or None for the local store."""
        if self._public_url is None:
            return None
        settings = self._settings
        return presign(
            "PUT",
            base_url=self._public_url,
            path=f"/{bucket}/{key}",
            credentials=Credentials(
                settings.minio_access_key, settings.minio_secret_key, settings.minio_region
            ),
            now=datetime.now(UTC),
            expires=expires,
            headers=headers,
        )

    def part_url(self, bucket: str, key: str, upload_id: str, number: int) -> str:
        """A presigned UploadPart URL (payload unsigned) on the address the API uses."""
        assert self._internal_url is not None
        settings = self._settings
        return presign(
            "PUT",
            base_url=self._internal_url,
            path=f"/{bucket}/{key}",
            credentials=Credentials(
                settings.minio_access_key, settings.minio_secret_key, settings.minio_region
            ),
            now=datetime.now(UTC),
            expires=PART_URL_TTL,
            query={"partNumber": str(number), "uploadId": upload_id},
        )

    @property
    def s3_http(self) -> urllib3.PoolManager | None:
        """The S3 connection pool the minio client uses, None locally."""
        return self._http

    @property
    def s3_client(self) -> Minio | None:
        """The minio client (S3 control plane and resumable multipart uploads), None locally."""
        return self._minio

    def local_path(self, bucket: str, key: str) -> Path | None:
        """Where `bucket/key` lives in the local store, or None on S3."""
        if self._local_root is None:
            return None
        return self._local_root / bucket / key

    async def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "") -> None:
        """Store a small object in one request (never a multipart upload)."""
        attributes: Attributes | None = (
            {"Content-Type": content_type} if content_type and self._minio else None
        )
        with transport_errors_as_unavailable("put"):
            await obstore.put_async(
                self._store(bucket), key, data, attributes=attributes, use_multipart=False
            )

    async def get_bytes(self, bucket: str, key: str) -> bytes:
        """A small object's bytes, read whole."""
        with transport_errors_as_unavailable("get"):
            result = await obstore.get_async(self._store(bucket), key)
            return bytes(await result.bytes_async())

    async def delete(self, bucket: str, key: str) -> None:
        """Delete `bucket/key`; a missing object is not an error."""
        try:
            with transport_errors_as_unavailable("delete"):
                await obstore.delete_async(self._store(bucket), key)
        except (NotFoundError, FileNotFoundError):
            pass

    async def exists(self, bucket: str, key: str) -> bool:
        try:
            with transport_errors_as_unavailable("head"):
                await obstore.head_async(self._store(bucket), key)
        except (NotFoundError, FileNotFoundError):
            return False
        return True

    async def move(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        """Server-side move (copy + delete); used when an upload's bucket is known only late."""
        with transport_errors_as_unavailable("move"):
            await self._move(src_bucket, src_key, dst_bucket, dst_key)

    async def _move(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        if src_bucket == dst_bucket:
            await obstore.rename_async(self._store(src_bucket), src_key, dst_key)
            return
        if self._minio is None:
            assert self._local_root is not None
            target = self._local_root / dst_bucket / dst_key
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread((self._local_root / src_bucket / src_key).rename, target)
            return
        from minio.commonconfig import CopySource

        await asyncio.to_thread(
            self._minio.copy_object, dst_bucket, dst_key, CopySource(src_bucket, src_key)
        )
        await self.delete(src_bucket, src_key)

    async def list_objects(
        self, bucket: str, *, prefix: str | None = None, after: str | None = None
    ) -> AsyncGenerator[list[ListedObject], None]:
        """Every object of `bucket` (under `prefix`, if given; with keys after `after`, if
        given: S3's StartAfter), in pages, in key order on S3; `BucketMissing` if the bucket
        does not exist."""
        if self._local_root is not None and not (self._local_root / bucket).is_dir():
            raise BucketMissing(bucket)
        with missing_bucket(bucket), transport_errors_as_unavailable("list"):
            stream = obstore.list(
                self._store(bucket), prefix=prefix, offset=after or None, chunk_size=1000
            )
            async for page in stream:
                yield [
                    ListedObject(
                        key=meta["path"], last_modified=meta["last_modified"], size=meta["size"]
                    )
                    for meta in page
                ]

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the store takes a write within the storage timeout
        (for `/health`: whatever the reason, a store that does not answer is not usable).

        The probe is written, not read: a read of a missing object looks the same whether the
        object or its bucket is missing, and a store can serve reads while refusing writes.
        Every other configured bucket must exist too."""
        try:
            await asyncio.wait_for(self._probe(), self._settings.storage_timeout_seconds)
        except Exception as exc:
            raise StorageUnavailable(
                f"Object storage is unavailable: {str(exc)[:200] or type(exc).__name__}"
            ) from exc

    async def _probe(self) -> None:
        missing = await self._missing_buckets()
        if missing:
            raise StorageUnavailable(f"bucket missing: {', '.join(missing)}")
        await self.put_bytes(self._settings.minio_bucket_customer_uploads, HEALTH_PROBE_KEY, b"ok")

    async def _missing_buckets(self) -> list[str]:
        if self._minio is None:
            assert self._local_root is not None
            return [b for b in self._buckets if not (self._local_root / b).is_dir()]
        minio = self._minio
        with transport_errors_as_unavailable("head_bucket"):
            found = await asyncio.gather(
                *(asyncio.to_thread(minio.bucket_exists, b) for b in self._buckets)
            )
        return [b for b, exists in zip(self._buckets, found, strict=True) if not exists]


async def _as_chunks(stream: Any) -> AsyncIterator[bytes | memoryview]:
    with transport_errors_as_unavailable("read"):
        async for chunk in stream:
            yield memoryview(chunk)
