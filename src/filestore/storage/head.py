"""What S3 says about an object without sending its bytes: size, MD5 and the SHA-256 it checked.

A direct upload's presigned PUT carries `x-amz-checksum-sha256` in its signature: the store
computes the SHA-256 of the bytes it receives and refuses the PUT (`BadDigest`) when it
differs, then keeps the checksum with the object. A HEAD with `x-amz-checksum-mode: ENABLED`
returns it, and the ETag of an object written by one PUT (no multipart, no SSE-KMS) is the
MD5 of its bytes. Both together let verification skip reading 100 MiB back through the API.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass

from minio.error import S3Error

from filestore.storage.errors import transport_errors_as_unavailable
from filestore.storage.store import ObjectStorage

_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Head:
    """The object's size; its MD5 and SHA-256 (hex) when the store vouches for them."""

    size: int
    md5: str | None
    sha256: str | None


def _sha256_of(value: str | None) -> str | None:
    if not value:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None


async def head(storage: ObjectStorage, bucket: str, key: str) -> Head | None:
    """The object's Head on S3; None for the local store or an object that is not there."""
    client = storage.s3_client
    if client is None:
        return None
    try:
        with transport_errors_as_unavailable("head"):
            stat = await asyncio.to_thread(
                client.stat_object,
                bucket,
                key,
                extra_headers={"x-amz-checksum-mode": "ENABLED"},
            )
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
            return None
        raise
    headers = {name.lower(): value for name, value in (stat.metadata or {}).items()}
    etag = (stat.etag or "").strip('"').lower()
    return Head(
        size=int(stat.size or 0),
        md5=etag if _PLAIN_MD5.match(etag) else None,
        sha256=_sha256_of(headers.get("x-amz-checksum-sha256")),
    )
