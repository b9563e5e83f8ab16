"""Hashes carried from one request of an upload to the next, inside one API process.

A resumable upload's MD5 + SHA-256 cannot be stored between requests (hashlib's state does not
serialise), so verification reads the complete object back from the store. When every request
of an upload reached this process in order (one client, sticky or single API process, the
common case), the hashes were already computed as the bytes went through, exactly as a form
upload computes them, and that second read is skipped. An entry counts only for the committed
offset it was made at; a request that fails drops it, and another process having appended in
between shows as a different offset, so a stale entry is never used: the read-back is the
fallback, never a correctness risk. With virus scanning on, the read-back always runs (clamd
needs the whole stream in one connection).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from filestore.files.hashing import StreamHasher
from filestore.files.sniff import SNIFF_BYTES

MAX_ENTRIES = 512


@dataclass
class RunningHash:
    """MD5 + SHA-256 and the first bytes of an upload's bytes 0..offset."""

    offset: int = 0
    hasher: StreamHasher = field(default_factory=StreamHasher)
    head: bytearray = field(default_factory=bytearray)

    async def write(self, chunk: memoryview) -> None:
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        await self.hasher.write(chunk)

    async def settle(self, offset: int) -> None:
        """Wait for the hashing thread; the hashes now cover bytes 0..offset."""
        await self.hasher.finish()
        self.offset = offset


_entries: OrderedDict[str, RunningHash] = OrderedDict()


def take(upload_id: str, offset: int) -> RunningHash | None:
    """The running hash for a request that starts at `offset`, if this process has it."""
    if offset == 0:
        _entries.pop(upload_id, None)
        return RunningHash()
    entry = _entries.pop(upload_id, None)
    if entry is None or entry.offset != offset:
        return None
    return entry


def keep(upload_id: str, entry: RunningHash) -> None:
    _entries[upload_id] = entry
    while len(_entries) > MAX_ENTRIES:
        _entries.popitem(last=False)
