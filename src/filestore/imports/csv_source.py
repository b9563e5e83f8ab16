"""A CSV import's file, whatever its encoding and dialect: decided, checked, then streamed.

`inspect` reads the first `PREFIX_BYTES` (one ranged read) and decides the encoding
(`decoding`) and the delimiter, quote character and header row (`dialect`). `prescan` is the
first pass over the whole file: every byte must decode in that encoding before anything is
written, and it counts the data rows. `batches` streams records from a checkpoint. Both run
the bytes through `Utf8Transcoder`, so the record splitter and the parser see UTF-8 whatever
the file's encoding, while checkpoints stay offsets in the file itself.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from filestore.imports.decoding import (
    PREFIX_BYTES,
    Detected,
    EncodingError,
    StreamDecoder,
    Utf8Transcoder,
    detect_encoding,
)
from filestore.imports.dialect import Dialect, DialectError, sniff
from filestore.imports.records import (
    MAX_RECORD_BYTES,
    ImportSource,
    Record,
    RecordBatch,
    RecordSplitter,
    UnterminatedQuote,
    record_batches,
)
from filestore.imports.rows import ImportFileError, ValidationRules

HEAD_BLOCK = 64 * 1024


@dataclass(frozen=True)
class CsvFormat:
    """How the file is read; saved on the job so a resumed run reads it the same way."""

    detected: Detected
    dialect: Dialect

    @property
    def quote(self) -> bytes:
        return self.dialect.quotechar.encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "csv",
            "encoding": self.detected.encoding,
            "bom": self.detected.bom,
            "encoding_reason": self.detected.reason,
            "delimiter": self.dialect.delimiter,
            "quotechar": self.dialect.quotechar,
            "header_row": self.dialect.header_row,
            "dialect_reason": self.dialect.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CsvFormat:
        return cls(
            Detected(str(data["encoding"]), int(data["bom"]), str(data["encoding_reason"])),
            Dialect(
                delimiter=str(data["delimiter"]),
                quotechar=str(data["quotechar"]),
                header_row=int(data["header_row"]),
                columns=0,
                reason=str(data["dialect_reason"]),
            ),
        )


# Jobs planned before the file's format was saved with the plan: UTF-8 and commas.
LEGACY = CsvFormat(Detected("utf-8", 0, "saved before detection"), Dialect(",", '"', 0, 0, ""))


async def inspect(source: ImportSource, prefix: bytes, rules: ValidationRules) -> CsvFormat:
    """The encoding and dialect, from the file's first bytes (`prefix`)."""
    complete = len(prefix) >= source.size
    try:
        detected = detect_encoding(prefix, override=rules.encoding, complete=complete)
        decoder = StreamDecoder(detected)
        text = decoder.feed(prefix[:PREFIX_BYTES]) + (decoder.finish() if complete else "")
        return CsvFormat(detected, sniff(text, complete=complete))
    except (EncodingError, DialectError) as exc:
        raise ImportFileError(str(exc)) from exc


@dataclass(frozen=True)
class Prescan:
    """What the first pass found. The header can span lines (a quoted newline), so the first
    data row is not always on the line after it."""

    data_rows: int
    header_text: str
    # Where the import starts: just past the header (an offset in the file).
    data_offset: int
    data_line: int


def _blank(record: Record, dialect: Dialect) -> bool:
    if not record.data.strip():
        return True
    text = record.data.decode("utf-8")
    cells = next(csv.reader([text], delimiter=dialect.delimiter, quotechar=dialect.quotechar), [])
    return not any(cell.strip() for cell in cells)


class _Scan:
    def __init__(self, fmt: CsvFormat, transcoder: Utf8Transcoder, keep: int = 0) -> None:
        self.fmt = fmt
        self.transcoder = transcoder
        self.titles = fmt.dialect.header_row
        self.header: Record | None = None
        self.header_end = 0
        self.rows = 0
        # The first `keep` data records are kept (the preview's rows).
        self.keep = keep
        self.kept: list[Record] = []

    def take(self, records: list[Record]) -> None:
        for record in records:
            if self.header is not None:
                if record.data.strip():
                    self.rows += 1
                    if len(self.kept) < self.keep:
                        self.kept.append(record)
            elif _blank(record, self.fmt.dialect):
                continue
            elif self.titles:
                self.titles -= 1
            else:
                self.header = record
                # Now, while its chunk is the transcoder's latest.
                self.header_end = self.transcoder.source_offset(record.end_offset)


async def prescan(source: ImportSource, fmt: CsvFormat) -> Prescan:
    """Decode the whole file (nothing is imported from a file that fails here), find the
    header and count the data rows."""
    transcoder = Utf8Transcoder(fmt.detected)
    splitter = RecordSplitter(
        start_offset=transcoder.start_offset, max_record_bytes=MAX_RECORD_BYTES, quote=fmt.quote
    )
    scan = _Scan(fmt, transcoder)
    try:
        async for chunk in source.open(0):
            scan.take(splitter.feed(transcoder.feed(bytes(chunk))))
        scan.take(splitter.feed(transcoder.finish()))
        scan.take(splitter.finish())
    except EncodingError as exc:
        raise ImportFileError(str(exc)) from exc
    except UnterminatedQuote as exc:
        raise ImportFileError(str(exc)) from exc
    header = scan.header
    if header is None:
        raise ImportFileError("The file has no header row")
    if header.too_long:
        raise ImportFileError("The header row is longer than 64 KiB")
    return Prescan(
        data_rows=scan.rows,
        header_text=header.data.decode("utf-8"),
        data_offset=scan.header_end,
        data_line=header.next_line,
    )


@dataclass(frozen=True)
class Head:
    """The header and the first data records, for the preview."""

    header_text: str
    header_line: int
    records: list[Record]
    bytes_read: int


async def head(
    source: ImportSource,
    fmt: CsvFormat,
    *,
    rows: int,
    max_bytes: int,
    prefix: bytes = b"",
    block_bytes: int = 0,
) -> Head:
    """The header and the first `rows` data records, read in ranged blocks (of `block_bytes`,
    by default HEAD_BLOCK) from the start of the file and no further than needed (nor than
    `max_bytes`); `prefix`, the file's first bytes when already read, is not read again."""
    block_bytes = block_bytes or HEAD_BLOCK
    transcoder = Utf8Transcoder(fmt.detected)
    splitter = RecordSplitter(
        start_offset=transcoder.start_offset, max_record_bytes=MAX_RECORD_BYTES, quote=fmt.quote
    )
    scan = _Scan(fmt, transcoder, keep=rows)
    offset = 0
    try:
        while offset < source.size and offset < max_bytes:
            if scan.header is not None and len(scan.kept) >= rows:
                break
            if offset == 0 and prefix:
                block = prefix
            else:
                block = await source.read(offset, offset + min(block_bytes, max_bytes - offset))
            if not block:
                break
            offset += len(block)
            scan.take(splitter.feed(transcoder.feed(block)))
        if offset >= source.size:
            scan.take(splitter.feed(transcoder.finish()))
            scan.take(splitter.finish())
    except (EncodingError, UnterminatedQuote) as exc:
        raise ImportFileError(str(exc)) from exc
    if scan.header is None:
        raise ImportFileError(
            "The file has no header row"
            if offset >= source.size
            else f"No header row in the first {max_bytes // 1024} KiB of the file"
        )
    if scan.header.too_long:
        raise ImportFileError("The header row is longer than 64 KiB")
    return Head(scan.header.data.decode("utf-8"), scan.header.line, scan.kept, offset)


async def batches(
    source: ImportSource, fmt: CsvFormat, *, offset: int, line: int, batch_rows: int
) -> AsyncIterator[RecordBatch]:
    """Batches of records from file offset `offset` (a record's start); each batch's
    `end_offset` is an offset in the file, ready to be a checkpoint."""
    transcoder = Utf8Transcoder(fmt.detected, start_offset=offset)
    try:
        async for batch in record_batches(
            transcoder.stream(source.open(offset)),
            start_offset=transcoder.start_offset,
            start_line=line,
            max_record_bytes=MAX_RECORD_BYTES,
            batch_rows=batch_rows,
            quote=fmt.quote,
        ):
            batch.end_offset = transcoder.source_offset(batch.end_offset)
            yield batch
    except EncodingError as exc:
        raise ImportFileError(str(exc)) from exc
