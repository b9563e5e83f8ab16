"""Split a CSV byte stream into records, knowing the byte offset and line of every record.

A checkpoint must be a byte offset where a record starts, so an import can resume with a ranged
read after a crash. Python's `csv` module hides offsets, so records are found here: a newline
ends a record when the number of quote characters seen in the record so far is even (RFC 4180
doubles quotes inside quoted fields, so parity is exact). Each record is then parsed by `csv`.
"""

from __future__ import annotations

import codecs
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

UTF8_BOM = codecs.BOM_UTF8
MAX_RECORD_BYTES = 64 * 1024


@dataclass
class ImportSource:
    """Where the CSV bytes come from: `open(offset)` streams the file from a byte offset."""

    size: int
    open: Callable[[int], AsyncIterator[bytes | memoryview]]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run a synchronous, allocation-heavy step without the cyclic garbage collector.

    Splitting or parsing a batch allocates tens of thousands of small objects that reference
    counting frees; meanwhile the collector would run dozens of times and traverse the
    worker's whole heap (measured: ~30% of the worker's CPU in an import). The switch is
    process-wide, so wrap only code that does not await.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class Record:
    """One CSV record: `line` is its first physical line (1-based), `data` its raw bytes
    without the line ending; `too_long` when it exceeded the size cap (data is then cut)."""

    line: int
    data: bytes
    end_offset: int
    next_line: int
    too_long: bool = False


@dataclass
class RecordBatch:
    records: list[Record] = field(default_factory=list)
    end_offset: int = 0
    end_line: int = 0


class UnterminatedQuote(ValueError):
    """The file ended inside a quoted field."""

    def __init__(self, line: int) -> None:
        super().__init__(f"The file ends inside a quoted field that starts on line {line}")
        self.line = line


class RecordSplitter:
    """Push bytes in, take complete records out, with offsets. Memory: one record at most."""

    def __init__(
        self, *, start_offset: int = 0, start_line: int = 1, max_record_bytes: int
    ) -> None:
        self.offset = start_offset  # offset of the first byte not yet consumed into a record
        self.line = start_line  # line number of the next record's first line
        self.max_record_bytes = max_record_bytes
        self._pending = bytearray()
        self._pending_len = 0
        self._pending_quotes = 0
        self._pending_lines = 0
        self._strip_bom = start_offset == 0

    def feed(self, chunk: bytes) -> list[Record]:
        """Records completed by `chunk`, in order."""
        with gc_paused():
            return self._feed(chunk)

    def _feed(self, chunk: bytes) -> list[Record]:
        if self._strip_bom:
            if len(chunk) < len(UTF8_BOM) and UTF8_BOM.startswith(bytes(self._pending) + chunk):
                self._pending += chunk  # wait for enough bytes to decide
                self._pending_len += len(chunk)
                return []
            chunk = bytes(self._pending) + chunk
            self._pending.clear()
            self._pending_len = 0
            self._strip_bom = False
            if chunk.startswith(UTF8_BOM):
                chunk = chunk[len(UTF8_BOM) :]
                self.offset += len(UTF8_BOM)
        records: list[Record] = []
        lines = chunk.split(b"\n")
        tail = lines.pop()  # after the last newline: the start of a record still incomplete
        quoted = b'"' in chunk
        longest = self.max_record_bytes + 1
        offset, line = self.offset, self.line
        for raw in lines:
            if self._pending_len or len(raw) > longest or (quoted and raw.count(b'"') % 2):
                # Continued from an earlier chunk, spanning lines, or over the size cap: the
                # byte-exact path through the pending buffer.
                self.offset, self.line = offset, line
                self._append(raw + b"\n", 0, len(raw) + 1)
                self._pending_lines += 1
                if self._pending_quotes % 2 == 0:
                    records.append(self._take_record())
                offset, line = self.offset, self.line
                continue
            # The common case, a whole one-line record: no copy through the buffer.
            offset += len(raw) + 1
            records.append(Record(line, raw[:-1] if raw.endswith(b"\r") else raw, offset, line + 1))
            line += 1
        self.offset, self.line = offset, line
        self._append(tail, 0, len(tail))
        return records

    def _append(self, chunk: bytes, start: int, end: int) -> None:
        if end <= start:
            return
        self._pending_quotes += chunk.count(b'"', start, end)
        room = self.max_record_bytes + 2 - len(self._pending)
        if room > 0:
            self._pending += chunk[start : min(end, start + room)]
        self._pending_len += end - start

    def _take_record(self) -> Record:
        data = bytes(self._pending)
        too_long = self._pending_len > self.max_record_bytes + 2
        if data.endswith(b"\n"):
            data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
        self.offset += self._pending_len
        record = Record(
            line=self.line,
            data=data,
            end_offset=self.offset,
            next_line=self.line + self._pending_lines,
            too_long=too_long,
        )
        self.line += self._pending_lines
        self._pending.clear()
        self._pending_len = self._pending_quotes = self._pending_lines = 0
        return record

    def finish(self) -> list[Record]:
        """The last record when the file does not end with a newline."""
        if self._strip_bom and self._pending.startswith(UTF8_BOM):
            self._pending = self._pending[len(UTF8_BOM) :]
            self._pending_len -= len(UTF8_BOM)
            self.offset += len(UTF8_BOM)
        if self._pending_len == 0:
            return []
        if self._pending_quotes % 2:
            raise UnterminatedQuote(self.line)
        self._pending_lines += 1
        return [self._take_record()]


async def record_batches(
    chunks: AsyncIterator[bytes | memoryview],
    *,
    start_offset: int,
    start_line: int,
    max_record_bytes: int,
    batch_rows: int,
    max_batch_bytes: int = 16 * 1024 * 1024,
) -> AsyncIterator[RecordBatch]:
    """Batches of non-blank records, each ending with the offset and line just past its last
    record (blank lines after it are consumed by the next batch). The last batch may be empty;
    it carries the offset of the end of the file."""
    splitter = RecordSplitter(
        start_offset=start_offset, start_line=start_line, max_record_bytes=max_record_bytes
    )
    batch = RecordBatch(end_offset=start_offset, end_line=start_line)
    batch_bytes = 0
    async for chunk in chunks:
        for record in splitter.feed(bytes(chunk)):
            batch.end_offset, batch.end_line = record.end_offset, record.next_line
            if not record.data.strip():
                continue
            batch.records.append(record)
            batch_bytes += len(record.data)
            if len(batch.records) >= batch_rows or batch_bytes >= max_batch_bytes:
                yield batch
                batch = RecordBatch(end_offset=record.end_offset, end_line=record.next_line)
                batch_bytes = 0
    for record in splitter.finish():
        batch.end_offset, batch.end_line = record.end_offset, record.next_line
        if record.data.strip():
            batch.records.append(record)
    batch.end_offset, batch.end_line = splitter.offset, splitter.line
    yield batch
