"""Verifying bytes that reached the store without passing through an upload's stream.

A direct upload (presigned PUT) or a resumable one puts its bytes in the store first; before
the file may be listed or served they are read back once, through the same byte sinks a
multipart upload uses (size guard, MD5 + SHA-256, virus scan) and the same type sniffing, and
compared with what the client declared. One implementation for every way in.
"""

from __future__ import annotations

from obstore.exceptions import NotFoundError

from filestore.errors import FilestoreError, Unprocessable
from filestore.files import containers
from filestore.files.hashing import StreamHasher
from filestore.files.models import RejectionReason
from filestore.files.names import extension_of
from filestore.files.scan import VirusFound, VirusScan
from filestore.files.service import StoredObject
from filestore.files.sinks import SizeGuard, Tee
from filestore.files.sniff import SNIFF_BYTES, sniff
from filestore.settings import Settings
from filestore.storage.store import ObjectStorage


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
        raise Rejected(
            "No bytes were uploaded for this file",
            code="upload_missing",
            reason=RejectionReason.missing,
        ) from exc
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
        mime_type = sniff(bytes(head), extension_of(filename))
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


def _as_rejection(exc: BaseException) -> BaseException:
    """The refusals of the sinks and the sniffer as Rejected; anything else unchanged."""
    if isinstance(exc, Rejected) or not isinstance(exc, FilestoreError):
        return exc
    if isinstance(exc, VirusFound):
        return Rejected(str(exc.message), code=exc.code, reason=RejectionReason.virus)
    if exc.code == "file_too_large":
        return Rejected(str(exc.message), code=exc.code, reason=RejectionReason.size)
    if exc.code == "content_mismatch" or exc.status_code == 415:
        return Rejected(str(exc.message), code=exc.code, reason=RejectionReason.type)
    return exc


async def _close(chunks: object) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
