"""Serving a stored file: HTTP Range, conditional requests and safe response headers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from fastapi.responses import Response, StreamingResponse
from obstore.exceptions import NotFoundError

from filestore import metrics
from filestore.errors import NotFound, RangeNotSatisfiable
from filestore.files.names import content_disposition
from filestore.files.sniff import SAFE_INLINE_TYPES
from filestore.storage.cache import ObjectCache
from filestore.storage.store import ObjectStorage


class Servable(Protocol):
    """What serving a file needs of its row: an ORM `FileUpload` or a
    `files.service.ServedFile`."""

    @property
    def id(self) -> int: ...

    @property
    def filename(self) -> str: ...

    @property
    def file_size(self) -> int: ...

    @property
    def mime_type(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    @property
    def bucket(self) -> str: ...

    @property
    def object_key(self) -> str: ...


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One `bytes=` range of RFC 9110, or None to send the whole file.

    Malformed or multi-range headers are ignored (the RFC allows it); a syntactically valid range
    that starts past the end raises 416.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = _number(last)
        if suffix == 0:
            raise _unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size)
    start = _number(first)
    end = size if not last else min(_number(last) + 1, size)
    if not last or _number(last) >= start:
        if start >= size:
            raise _unsatisfiable(size)
        return ByteRange(start, end)
    return None


def _number(digits: str) -> int:
    """`int(digits)`, saturated past any file size: int() refuses more than 4300 digits."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 19 else 10**19


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"Range not satisfiable: the file has {size} bytes",
        headers={"Content-Range": f"bytes */{size}"},
    )


def etag_of(file: Servable) -> str:
    return f'"{file.sha256}"'


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses weak comparison (RFC 9110 13.1.2): `W/` is ignored, `*` matches."""
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def base_headers(file: Servable, *, inline: bool) -> dict[str, str]:
    show_inline = inline and file.mime_type in SAFE_INLINE_TYPES
    return {
        "Content-Disposition": content_disposition(file.filename, inline=show_inline),
        "ETag": etag_of(file),
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-cache",
    }


@dataclass(frozen=True)
class DirectLink:
    """A presigned GET straight to the store, and when it stops working."""

    url: str
    expires_at: datetime


def direct_link(
    file: Servable, storage: ObjectStorage, *, ttl_seconds: int, inline: bool, now: datetime
) -> DirectLink | None:
    """A presigned GET for `file` that makes the store answer with our Content-Disposition and
    sniffed type, or None when the store has no URLs (the local store)."""
    show_inline = inline and file.mime_type in SAFE_INLINE_TYPES
    ttl = timedelta(seconds=ttl_seconds)
    url = storage.presigned_get(
        file.bucket,
        file.object_key,
        expires=ttl,
        response_headers={
            "response-content-disposition": content_disposition(file.filename, inline=show_inline),
            "response-content-type": file.mime_type,
            "response-cache-control": "private, no-store",
        },
    )
    return None if url is None else DirectLink(url=url, expires_at=now + ttl)


async def file_response(
    file: Servable,
    storage: ObjectStorage,
    *,
    range_header: str | None,
    if_none_match: str | None,
    if_range: str | None,
    inline: bool,
    head: bool = False,
    cache: ObjectCache | None = None,
) -> Response:
    """A streaming 200/206 (or 304) response for `file`; a small one whole, from `cache` if
    it holds it (the caller has checked that `file` may be served)."""
    headers = base_headers(file, inline=inline)
    if if_none_match and _etag_matches(if_none_match, etag_of(file)):
        return Response(status_code=304, headers=headers)
    byte_range = parse_range(range_header, file.file_size)
    if byte_range is not None and if_range and if_range.strip() != etag_of(file):
        byte_range = None
    if head:
        # HEAD: the same headers without touching the store.
        length = file.file_size if byte_range is None else byte_range.length
        headers["Content-Length"] = str(length)
        if byte_range is not None:
            headers["Content-Range"] = (
                f"bytes {byte_range.start}-{byte_range.end - 1}/{file.file_size}"
            )
        return Response(
            status_code=200 if byte_range is None else 206,
            headers=headers,
            media_type=file.mime_type,
        )
    if byte_range is None and file.file_size <= WHOLE_BODY_MAX:
        return await _whole(file, storage, headers, cache)
    try:
        if byte_range is None:
            stored = await storage.open(file.bucket, file.object_key)
        else:
            stored = await storage.open(
                file.bucket, file.object_key, start=byte_range.start, end=byte_range.end
            )
    except (NotFoundError, FileNotFoundError) as exc:
        raise NotFound(
            f"The content of file {file.id} is missing", code="file_content_missing"
        ) from exc
    headers["Content-Length"] = str(stored.size)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end - 1}/{file.file_size}"
    return StreamingResponse(
        _counted(stored.chunks), status_code=status, headers=headers, media_type=file.mime_type
    )


# Files up to this size are read whole and sent as one body: a streaming response costs a task
# group (to watch for a disconnect), an async iterator over the store's stream and one ASGI
# message per chunk, more than the bytes themselves for a ticket photo or a 4 KiB document.
WHOLE_BODY_MAX = 64 * 1024


async def _whole(
    file: Servable, storage: ObjectStorage, headers: dict[str, str], cache: ObjectCache | None
) -> Response:
    body = None if cache is None else cache.get(file.bucket, file.object_key)
    if body is None:
        try:
            body = await storage.get_bytes(file.bucket, file.object_key)
        except (NotFoundError, FileNotFoundError) as exc:
            raise NotFound(
                f"The content of file {file.id} is missing", code="file_content_missing"
            ) from exc
        if cache is not None:
            cache.put(file.bucket, file.object_key, body)
    metrics.DOWNLOAD_BYTES.inc(len(body))
    return Response(body, headers=headers, media_type=file.mime_type)


async def _counted(chunks: AsyncIterator[bytes | memoryview]) -> AsyncIterator[bytes | memoryview]:
    async for chunk in chunks:
        metrics.DOWNLOAD_BYTES.inc(len(chunk))
        yield chunk
