"""Verifying bytes that reached the store without passing through an upload's stream.

A direct upload (presigned PUT) or a resumable one puts its bytes in the store first; before
the file may be listed or served they are read back once, through the same byte sinks a
multipart upload uses (size guard, MD5 + SHA-256, virus scan) and the same type sniffing, and
compared with what the client declared. One implementation for every way in.

`check_stored` spares the read-back where the store itself vouches for the bytes: an S3 object
written by a presigned PUT whose signature bound `x-amz-checksum-sha256` was hashed by the
store, which refused other bytes; its HEAD gives that SHA-256 and (single PUT) the MD5 as
ETag, and a ranged GET of the first bytes is enough to sniff. With virus scanning on, or when
the store does not say, every byte is read back.

`unverified_row` is the row of bytes not verified (yet), whichever way they came in.
"""

from __future__ import annotations

from typing import Any

from obstore.exceptions import NotFoundError

from filestore.auth.principal import Actor
from filestore.errors import FilestoreError, Unprocessable
from filestore.files import containers
from filestore.files.form import UploadFields
from filestore.files.hashing import StreamHasher
from filestore.files.models import FileUpload, RejectionReason, UploadStatus
from filestore.files.names import extension_of
from filestore.files.scan import VirusFound, VirusScan
from filestore.files.service import StoredObject
from filestore.files.sinks import SizeGuard, Tee, file_too_large
from filestore.files.sniff import SNIFF_BYTES, sniff
from filestore.settings import Settings
from filestore.storage.head import head
from filestore.storage.store import ObjectStorage

# The type of bytes not verified yet (a row `pending` or `uploading`): never served.
UNVERIFIED_MIME_TYPE = "application/octet-stream"


def unverified_row(
    fields: UploadFields,
    user: Actor,
    *,
    filename: str,
    bucket: str,
    key: str,
    status: UploadStatus,
    **values: Any,
) -> FileUpload:
    """A new `file_uploads` row for bytes not verified (yet): a form upload's `uploading` row,
    a direct upload's `pending` reservation, a small file refused before it was stored.
    `values` sets the other columns (a declared size or hash, a reservation's end...)."""
    columns: dict[str, Any] = {
        "file_size": 0,
        "md5": "",
        "sha256": "",
        **values,
    }
    return FileUpload(
        filename=filename,
        bucket=bucket,
        object_key=key,
        mime_type=UNVERIFIED_MIME_TYPE,
        file_type=fields.file_type,
        upload_status=status,
        customer_id=fields.owner_customer_id(user),
        ticket_id=fields.ticket_id,
        service_id=fields.service_id,
        metadata_=fields.metadata,
        uploaded_by=user.id,
        **columns,
    )


class Rejected(Unprocessable):
    """The stored bytes are not what was declared, or not acceptable; `reason` says which."""

    def __init__(self, detail: str, *, code: str, reason: RejectionReason) -> None:
        super().__init__(detail, code=code)
        self.reason = reason


async def read_back(
    storage: ObjectStorage,
    settings: Settings,
    *,
    bucket: str,
    key: str,
    filename: str,
    user_id: int,
) -> StoredObject:
    """Stream `bucket/key` through the upload's sinks: its size, hashes, sniffed type and scan
    status. Raises Rejected (missing, too large, wrong type, infected) or the scanner's 503."""
    try:
        opened = await storage.open(bucket, key)
    except (NotFoundError, FileNotFoundError) as exc:
        raise _missing() from exc
    guard = SizeGuard(settings.max_file_size)
    hasher = StreamHasher()
    scan = await VirusScan.start(settings, filename=filename, user_id=user_id)
    sinks = Tee(guard, hasher, scan)
    head = bytearray()
    try:
        async for chunk in opened.chunks:
            view = memoryview(chunk)
            if len(head) < SNIFF_BYTES:
                head += view[: SNIFF_BYTES - len(head)]
            await sinks.write(view)
        await sinks.finish()
        mime_type = sniff_type(bytes(head), filename)
        await containers.check_stored(
            storage, bucket, key, size=guard.size, extension=extension_of(filename)
        )
    except BaseException as exc:
        sinks.abort()
        raise _as_rejection(exc) from exc
    finally:
        await _close(opened.chunks)
    return StoredObject(
        bucket=bucket,
        key=key,
        filename=filename,
        mime_type=mime_type,
        size=guard.size,
        md5=hasher.md5,
        sha256=hasher.sha256,
        scan_status=scan.status,
    )


async def check_stored(
    storage: ObjectStorage,
    settings: Settings,
    *,
    bucket: str,
    key: str,
    filename: str,
    user_id: int,
    sha256: str,
) -> StoredObject:
    """What `read_back` would find in `bucket/key`, from the store's HEAD and first bytes when
    the store checked the declared `sha256` itself (scanning off), else by reading it back."""
    if settings.virus_scan == "off" and storage.s3_client is not None:
        found = await head(storage, bucket, key)
        if found is None:
            raise _missing()
        if found.sha256 == sha256 and found.md5 is not None and found.size > 0:
            if found.size > settings.max_file_size:
                raise _as_rejection(file_too_large(settings.max_file_size))
            first = await _first_bytes(storage, bucket, key, min(found.size, SNIFF_BYTES))
            try:
                mime_type = sniff_type(first, filename)
                await containers.check_stored(
                    storage, bucket, key, size=found.size, extension=extension_of(filename)
                )
            except FilestoreError as exc:
                raise _as_rejection(exc) from exc
            # (bucket, key, filename, mime_type, size, md5, sha256); scan_status: disabled
            return StoredObject(bucket, key, filename, mime_type, found.size, found.md5, sha256)
    return await read_back(
        storage, settings, bucket=bucket, key=key, filename=filename, user_id=user_id
    )


def _missing() -> Rejected:
    return Rejected(
        "No bytes were uploaded for this file",
        code="upload_missing",
        reason=RejectionReason.missing,
    )


async def _first_bytes(storage: ObjectStorage, bucket: str, key: str, size: int) -> bytes:
    opened = await storage.open(bucket, key, start=0, end=size)
    data = bytearray()
    try:
        async for chunk in opened.chunks:
            data += chunk
    finally:
        await _close(opened.chunks)
    return bytes(data)


def check_declared(stored: StoredObject, *, size: int, sha256: str) -> None:
    """422 naming what differs between the stored bytes and what the client declared."""
    if stored.size != size:
        raise Rejected(
            f"The stored file has {stored.size} bytes, {size} were declared",
            code="size_mismatch",
            reason=RejectionReason.size,
        )
    if stored.sha256 != sha256:
        raise Rejected(
            f"The stored file's SHA-256 is {stored.sha256}, {sha256} was declared",
            code="checksum_mismatch",
            reason=RejectionReason.checksum,
        )


def rejection_of(exc: BaseException) -> RejectionReason | None:
    """Why `exc` refused an upload's bytes (size, checksum, type, virus), or None when it is
    not a verdict on the bytes (a bad field, a disconnect, a store or scanner away)."""
    if isinstance(exc, Rejected):
        return exc.reason
    if isinstance(exc, VirusFound):
        return RejectionReason.virus
    if not isinstance(exc, FilestoreError):
        return None
    if exc.code == "file_too_large":
        return RejectionReason.size
    if exc.code == "checksum_mismatch":
        return RejectionReason.checksum
    if exc.code == "content_mismatch" or exc.status_code == 415:
        return RejectionReason.type
    return None


def _as_rejection(exc: BaseException) -> BaseException:
    """The refusals of the sinks and the sniffer as Rejected (422); anything else unchanged."""
    reason = rejection_of(exc)
    if reason is None or isinstance(exc, Rejected) or not isinstance(exc, FilestoreError):
        return exc
    return Rejected(str(exc.message), code=exc.code, reason=reason)


def sniff_type(head: bytes, filename: str) -> str:
    """The sniffed type of a file whose first bytes are `head`; a refusal is Rejected (422),
    whichever path read the bytes."""
    try:
        return sniff(head, extension_of(filename))
    except BaseException as exc:
        raise _as_rejection(exc) from exc


async def _close(chunks: object) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
