"""Which object-store failures are an outage.

`ObjectStorage` turns transport errors (connection refused or reset, timeouts, a 5xx from the
server) into `StorageUnavailable`, a 503 the client may retry. Everything else it lets through
as it is: a missing object is the caller's business, and wrong credentials, a missing bucket
or a bad endpoint are a misconfiguration, which the API logs with its traceback and answers
with a 500 instead of disguising it as an outage.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import structlog
import urllib3.exceptions
from minio.error import S3Error
from minio.error import ServerError as MinioServerError
from obstore.exceptions import GenericError, NotFoundError

from filestore.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

# obstore (object_store's Rust client) reports a request that never got an answer as
# "HTTP error: error sending request" (connect refused, reset, timeout), and a 5xx answer,
# after its retries, as "Server returned non-2xx status code: 503 ...".
_OBSTORE_TRANSPORT = re.compile(r"HTTP error|non-2xx status code: 5\d\d|error decoding response")


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"

    def __init__(self, message: str = "Object storage is unavailable, try again shortly") -> None:
        super().__init__(message)


class BucketMissing(Exception):
    """A configured bucket does not exist (deleted, or never created): not an outage of the
    whole store, and not a missing object either."""

    def __init__(self, bucket: str) -> None:
        super().__init__(f"bucket {bucket!r} does not exist")
        self.bucket = bucket


def is_missing_bucket(exc: BaseException) -> bool:
    """S3's NoSuchBucket, from either client."""
    if isinstance(exc, S3Error):
        return exc.code == "NoSuchBucket"
    return isinstance(exc, GenericError | NotFoundError) and "NoSuchBucket" in str(exc)


def is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, GenericError):
        return _OBSTORE_TRANSPORT.search(str(exc)) is not None
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        return exc.reason is None or is_transport_error(exc.reason)
    # urllib3 (the minio SDK's client): connect/read timeouts, refused connections, resets, too
    # many 5xx answers; minio's ServerError: a 5xx answer. Not urllib3's SSLError or
    # LocationParseError: TLS against a plain-HTTP endpoint or a bad URL is a misconfiguration.
    return isinstance(
        exc,
        ConnectionError
        | TimeoutError
        | urllib3.exceptions.TimeoutError
        | urllib3.exceptions.ProtocolError
        | urllib3.exceptions.ResponseError
        | MinioServerError,
    )


def as_unavailable(exc: Exception, operation: str) -> StorageUnavailable | None:
    """`StorageUnavailable` (logged) if `exc` is a transport error, else None."""
    if isinstance(exc, StorageUnavailable) or not is_transport_error(exc):
        return None
    log.warning("storage.unavailable", operation=operation, error=str(exc)[:300])
    return StorageUnavailable()


@contextmanager
def transport_errors_as_unavailable(operation: str) -> Iterator[None]:
    """Raise `StorageUnavailable` for a transport error inside the block; anything else
    passes through unchanged."""
    try:
        yield
    except Exception as exc:
        unavailable = as_unavailable(exc, operation)
        if unavailable is None:
            raise
        raise unavailable from exc


class WatchedSource:
    """The bytes of a put, remembering whether the source itself failed: a client that
    disconnects or a scanner that gives up is not an outage of the store."""

    def __init__(self, chunks: AsyncIterator[memoryview]) -> None:
        self._chunks = chunks
        self.error: BaseException | None = None

    def __aiter__(self) -> WatchedSource:
        return self

    async def __anext__(self) -> memoryview:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            self.error = exc
            raise
