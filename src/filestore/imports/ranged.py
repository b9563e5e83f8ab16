"""A read-only, seekable file over an object in the store, read with ranged GETs.

An .xlsx is a zip: its table of contents is at the end, and each part is found by seeking.
Nothing of an upload is spooled to local disk, and a workbook of up to MAX_FILE_SIZE is not
read into memory either: `RangeFile` fetches `BLOCK_SIZE` blocks on demand and keeps the
last `CACHED_BLOCKS` of them, which is all a zip reader needs (the central directory, then
each part front to back). It is a plain synchronous file for the zip reader running in a
worker thread; `xlsx_source.thread_fetch` bridges it to the async store on the event loop.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable

BLOCK_SIZE = 1024 * 1024
CACHED_BLOCKS = 4

Fetch = Callable[[int, int], bytes]


class RangeFile(io.RawIOBase):
    """`fetch(start, end)` returns bytes `start..end` (end exclusive) of an object of `size`."""

    def __init__(
        self, fetch: Fetch, size: int, *, block_size: int = BLOCK_SIZE, cached: int = CACHED_BLOCKS
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._block_size = block_size
        self._cached = cached
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._position = 0
        self.requests = 0
        self.fetched_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._position < self._size:
            index, within = divmod(self._position, self._block_size)
            block = self._block(index)
            piece = block[within : within + len(view) - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
            self._position += len(piece)
        return done

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is not None:
            self._blocks.move_to_end(index)
            return block
        start = index * self._block_size
        end = min(self._size, start + self._block_size)
        block = self._fetch(start, end)
        if len(block) != end - start:
            raise OSError(f"short read from the object store: {len(block)} of {end - start} bytes")
        self.requests += 1
        self.fetched_bytes += len(block)
        self._blocks[index] = block
        while len(self._blocks) > self._cached:
            self._blocks.popitem(last=False)
        return block
