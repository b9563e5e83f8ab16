"""The tus 1.0.0 wire format: versions, extensions, header parsing, and the protocol's errors.

Pure functions, no I/O: what each header may hold and how a malformed one is refused.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from filestore.errors import BadRequest, Conflict, FilestoreError, UnsupportedMediaType

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "expiration",
    "checksum",
)
CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha256")
PATCH_CONTENT_TYPE = "application/offset+octet-stream"
PARTIAL_UPLOAD_CONTENT_TYPE = "application/partial-upload"
DRAFT_INTEROP_VERSION = "6"
FILE_ID_HEADER = "Filestore-File-Id"
# What a browser's script may read from a tus response (CORS `Access-Control-Expose-Headers`).
EXPOSED_HEADERS = (
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Defer-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Complete",
    FILE_ID_HEADER,
)
MAX_METADATA_HEADER = 16 * 1024


class PreconditionFailed(FilestoreError):
    status_code = 412
    code = "tus_version_unsupported"


class Locked(FilestoreError):
    status_code = 423
    code = "upload_locked"


class ChecksumMismatch(FilestoreError):
    """tus's own status for a PATCH whose body does not match its `Upload-Checksum`."""

    status_code = 460
    code = "checksum_mismatch"


class Gone(FilestoreError):
    status_code = 410
    code = "upload_gone"


def base_headers() -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION}


def options_headers(max_size: int) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
    }


class Dialect(enum.Enum):
    """tus 1.0.0, or the IETF resumable-upload draft as tus-js-client 4 speaks it
    (`protocol: "ietf-draft-05"`: `Upload-Draft-Interop-Version: 6` instead of `Tus-Resumable`,
    `application/partial-upload` bodies, `Upload-Complete`). Same upload state, other headers."""

    tus = "tus"
    ietf = "ietf"


def dialect_of(headers: Mapping[str, str]) -> Dialect:
    """412 unless the request speaks tus 1.0.0 or draft interop version 6 (every request but
    OPTIONS must say which)."""
    if headers.get("tus-resumable") == TUS_VERSION:
        return Dialect.tus
    if headers.get("upload-draft-interop-version") == DRAFT_INTEROP_VERSION:
        return Dialect.ietf
    raise PreconditionFailed(
        f"Tus-Resumable must be {TUS_VERSION}",
        headers={"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION},
    )


def parse_complete(value: str | None) -> bool | None:
    """The draft's `Upload-Complete` (a structured-field boolean): True for `?1`."""
    if value is None:
        return None
    if value.strip() not in {"?0", "?1"}:
        raise BadRequest("Upload-Complete must be ?0 or ?1", code="invalid_header")
    return value.strip() == "?1"


def http_date(moment: datetime) -> str:
    """RFC 9110 date, as `Upload-Expires` wants it."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_size(name: str, value: str | None) -> int | None:
    """A non-negative whole number header, or None when absent; 400 otherwise."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise BadRequest(f"{name} must be a non-negative whole number", code="invalid_header")
    return int(text)


def parse_metadata(value: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
    Keys are unique ASCII without spaces or commas; values must be UTF-8 text."""
    if value is None or not value.strip():
        return {}
    if len(value) > MAX_METADATA_HEADER:
        raise BadRequest("Upload-Metadata is too long", code="invalid_metadata_header")
    pairs: dict[str, str] = {}
    for item in value.split(","):
        parts = item.strip().split(" ")
        if len(parts) > 2 or not parts[0] or not parts[0].isascii():
            raise BadRequest(
                "Upload-Metadata must be `key base64value` pairs, comma-separated",
                code="invalid_metadata_header",
            )
        key = parts[0]
        if key in pairs:
            raise BadRequest(f"Upload-Metadata key {key!r} is given twice", code="duplicate_field")
        pairs[key] = _decode_value(key, parts[1]) if len(parts) == 2 else ""
    return pairs


def _decode_value(key: str, encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded, validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(
            f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text",
            code="invalid_metadata_header",
        ) from exc


def encode_metadata(pairs: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in pairs.items()
    )


def parse_checksum(value: str | None) -> tuple[str, bytes] | None:
    """`Upload-Checksum: <algorithm> <base64 digest>` -> (algorithm, digest), None if absent."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequest(
            f"Upload-Checksum algorithm must be one of {', '.join(CHECKSUM_ALGORITHMS)}",
            code="checksum_algorithm_unsupported",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("Upload-Checksum digest is not base64", code="invalid_header") from exc
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise BadRequest(
            f"Upload-Checksum digest has the wrong length for {algorithm}", code="invalid_header"
        )
    return algorithm, digest


def check_patch_content_type(value: str | None, dialect: Dialect = Dialect.tus) -> None:
    """415 unless the body is declared as `application/offset+octet-stream` (or, in the draft,
    `application/partial-upload`)."""
    media_type = (value or "").split(";", 1)[0].strip().lower()
    allowed = {PATCH_CONTENT_TYPE}
    if dialect is Dialect.ietf:
        allowed.add(PARTIAL_UPLOAD_CONTENT_TYPE)
    if media_type not in allowed:
        raise UnsupportedMediaType(
            f"PATCH bodies must be sent as Content-Type: {PATCH_CONTENT_TYPE}",
            code="unsupported_media_type",
        )


def offset_conflict(current: int, sent: int) -> Conflict:
    """409 naming the offset the client must resume from."""
    return Conflict(
        f"Upload-Offset is {sent}, the upload is at {current}: resume from {current}",
        code="offset_mismatch",
        headers={"Upload-Offset": str(current), **base_headers()},
    )


def error_headers(exc: FilestoreError, extra: dict[str, Any] | None = None) -> None:
    """Add Tus-Resumable (and `extra`) to an error's response headers."""
    headers = dict(exc.headers or {})
    headers.setdefault("Tus-Resumable", TUS_VERSION)
    for name, value in (extra or {}).items():
        headers.setdefault(name, str(value))
    exc.headers = headers
