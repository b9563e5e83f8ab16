"""AWS Signature Version 4 query presigning, with request headers bound into the signature.

minio's `presigned_*` sign only `host`; a direct upload must also pin `Content-Length`,
`x-amz-checksum-sha256` and `If-None-Match`, so that the store itself refuses any other bytes
or a second write. The algorithm is AWS's ("Authenticating requests: using query parameters"),
checked against AWS's published example in the tests. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    region: str


def _uri_encode(text: str, *, keep_slash: bool) -> str:
    return quote(text, safe="/~" if keep_slash else "~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _signing_key(secret_key: str, day: str, region: str) -> bytes:
    key = _hmac(f"AWS4{secret_key}".encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    return key


def presign(
    method: str,
    *,
    base_url: str,
    path: str,
    credentials: Credentials,
    now: datetime,
    expires: timedelta,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> str:
    """The presigned URL for `method` on `base_url` + `path` (path-style: `/bucket/key`).

    Every header in `headers` is signed: the request must carry each one with exactly this
    value, or the store refuses it. `host` is always signed. `query` adds parameters of the
    operation (`partNumber`, `uploadId`), signed too. The payload is never signed
    (`UNSIGNED-PAYLOAD`): the store does not hash the body to check the signature.
    """
    host = base_url.split("://", 1)[1].rstrip("/")
    signed = {"host": host} | {
        name.lower(): value.strip() for name, value in (headers or {}).items()
    }
    names = sorted(signed)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    scope = f"{day}/{credentials.region}/s3/aws4_request"
    params = {
        **(query or {}),
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(int(expires.total_seconds())),
        "X-Amz-SignedHeaders": ";".join(names),
    }
    canonical_query = "&".join(
        f"{_uri_encode(key, keep_slash=False)}={_uri_encode(value, keep_slash=False)}"
        for key, value in sorted(params.items())
    )
    canonical_path = _uri_encode(path, keep_slash=True)
    canonical_request = "\n".join(
        [
            method,
            canonical_path,
            canonical_query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            UNSIGNED_PAYLOAD,
        ]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _signing_key(credentials.secret_key, day, credentials.region)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{base_url.rstrip('/')}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}"
