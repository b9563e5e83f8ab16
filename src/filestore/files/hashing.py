"""MD5 + SHA-256 of a stream, computed in a worker thread one batch behind the stream."""

from __future__ import annotations

import asyncio
import hashlib

HASH_BATCH_BYTES = 1024 * 1024
# A last batch this small (a small file, a large one's tail) is hashed on the event loop.
INLINE_HASH_BYTES = 64 * 1024


class StreamHasher:
    """A byte sink: MD5 + SHA-256 in a worker thread, a batch behind the stream, so hashing
    overlaps I/O; a small last batch is hashed in place. `md5` and `sha256` are set by
    `finish`.

    hashlib releases the GIL on large updates, so this costs the event loop almost nothing.
    """

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._batch: list[memoryview] = []
        self._batch_bytes = 0
        self._pending: asyncio.Future[None] | None = None
        self.md5 = ""
        self.sha256 = ""

    def _update(self, views: list[memoryview]) -> None:
        for view in views:
            self._md5.update(view)
            self._sha256.update(view)

    async def write(self, chunk: memoryview) -> None:
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes >= HASH_BATCH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._pending is not None:
            await self._pending
            self._pending = None
        batch, size = self._batch, self._batch_bytes
        self._batch, self._batch_bytes = [], 0
        if size <= INLINE_HASH_BYTES:
            self._update(batch)  # a few microseconds: cheaper than a hop to a thread
            return
        self._pending = asyncio.get_running_loop().run_in_executor(None, self._update, batch)

    async def finish(self) -> None:
        await self._flush()
        if self._pending is not None:
            await self._pending
        self.md5, self.sha256 = self._md5.hexdigest(), self._sha256.hexdigest()

    def abort(self) -> None:
        # A batch still hashing in the thread just finishes; nothing reads it.
        self._batch = []
