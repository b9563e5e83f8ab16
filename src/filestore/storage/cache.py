"""A bounded in-process cache of small stored objects, for downloads.

A stored object never changes once its file is completed (keys are generated, unique per file,
and written create-only), so a copy of its bytes stays right for as long as the object exists.
Whether the caller may have it is decided before the cache is asked: the download's statement
checks the token and the file's row on every request, so a deleted, expired or hidden file is a
404 before its cached bytes are looked at, and the audit event is written as for any download.

Only objects up to `max_object` bytes (`files.download.WHOLE_BODY_MAX`, 64 KiB: ticket photos,
small documents) are kept, least recently used first out, at most `DOWNLOAD_CACHE_BYTES` in all
per process (0: no cache). A hit saves the S3 GET: a round trip to the store and obstore's runtime,
most of a 4 KiB download's server CPU after its one database statement.
"""

from __future__ import annotations

from collections import OrderedDict


class ObjectCache:
    """Bytes by (bucket, key), least recently used out past `max_bytes` in all."""

    def __init__(self, *, max_bytes: int, max_object: int) -> None:
        self.max_bytes = max_bytes
        self.max_object = max_object
        self.size = 0
        self._bodies: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._bodies)

    def get(self, bucket: str, key: str) -> bytes | None:
        body = self._bodies.get((bucket, key))
        if body is not None:
            self._bodies.move_to_end((bucket, key))
        return body

    def put(self, bucket: str, key: str, body: bytes) -> None:
        if len(body) > self.max_object or len(body) > self.max_bytes:
            return
        old = self._bodies.pop((bucket, key), None)
        if old is not None:
            self.size -= len(old)
        self._bodies[(bucket, key)] = body
        self.size += len(body)
        while self.size > self.max_bytes:
            _, evicted = self._bodies.popitem(last=False)
            self.size -= len(evicted)
