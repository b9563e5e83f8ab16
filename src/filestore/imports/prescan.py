"""The first pass over an import file: is it UTF-8 text, where does its header end, how many
data rows does it have. Nothing is imported from a file that fails here."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from filestore.imports.records import (
    MAX_RECORD_BYTES,
    ImportSource,
    Record,
    RecordSplitter,
    UnterminatedQuote,
)
from filestore.imports.rows import ImportFileError


@dataclass(frozen=True)
class Prescan:
    """What the first pass found. The header can span lines (a quoted newline), so the first
    data row is not always on line 2."""

    data_rows: int
    header_text: str
    # Where the import starts: just past the header.
    data_offset: int
    data_line: int


async def prescan(source: ImportSource) -> Prescan:
    """Count data rows and check the whole file is UTF-8 text before importing anything."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    splitter = RecordSplitter(max_record_bytes=MAX_RECORD_BYTES)
    header: Record | None = None
    rows = 0
    consumed = 0
    async for chunk in source.open(0):
        data = bytes(chunk)
        if b"\x00" in data:
            raise ImportFileError("The file is not a CSV text file (it contains NUL bytes)")
        try:
            decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise ImportFileError(_encoding_message(data, exc, consumed)) from exc
        consumed += len(data)
        for record in splitter.feed(data):
            if header is None:
                header = record
            elif record.data.strip():
                rows += 1
    try:
        decoder.decode(b"", final=True)
        last = splitter.finish()
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "The file is not UTF-8: it ends in the middle of a character"
        ) from exc
    except UnterminatedQuote as exc:
        raise ImportFileError(str(exc)) from exc
    for record in last:
        if header is None:
            header = record
        elif record.data.strip():
            rows += 1
    if header is None or not header.data.strip():
        raise ImportFileError(
            "The file is empty" if header is None else "The file has no header row"
        )
    if header.too_long:
        raise ImportFileError("The header row is longer than 64 KiB")
    return Prescan(
        data_rows=rows,
        header_text=header.data.decode("utf-8"),
        data_offset=header.end_offset,
        data_line=header.next_line,
    )


def _encoding_message(data: bytes, exc: UnicodeDecodeError, consumed: int) -> str:
    offset = consumed + exc.start
    try:
        data.decode("cp1252")
        guess = " It looks like Latin-1/Windows-1252:"
    except UnicodeDecodeError:
        guess = ""
    return (
        f"The file is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {offset}).{guess} "
        "save it as UTF-8 (CSV UTF-8) and upload it again"
    )
