"""Byte sinks: what an upload's file bytes pass through on their way to the object store.

Each sink sees every chunk in order (`write`), then either `finish` (the whole file was
stored) or `abort` (anything failed: release what it holds, raise nothing). A sink refuses the
upload by raising from `write` or `finish`; the pipeline raises inside the object store's source
iterator, so a refusal while streaming aborts the multipart upload. Sinks never buffer the
file: each chunk is dealt with and let go.
"""

from __future__ import annotations

from typing import Protocol

from filestore.errors import PayloadTooLarge


class ByteSink(Protocol):
    async def write(self, chunk: memoryview) -> None: ...

    async def finish(self) -> None: ...

    def abort(self) -> None: ...


def file_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"File is larger than the limit of {limit} bytes", code="file_too_large")


class SizeGuard:
    """Counts the bytes; 413 the moment they pass `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0

    async def write(self, chunk: memoryview) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise file_too_large(self.limit)

    async def finish(self) -> None:
        return None

    def abort(self) -> None:
        return None


class Tee:
    """Hands every chunk to each sink in turn (the cheap refusals first)."""

    def __init__(self, *sinks: ByteSink) -> None:
        self.sinks = sinks

    async def write(self, chunk: memoryview) -> None:
        for sink in self.sinks:
            await sink.write(chunk)

    async def finish(self) -> None:
        for sink in self.sinks:
            await sink.finish()

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()
