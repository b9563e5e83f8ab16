"""An .xlsx import's file: its header and rows, read over ranged GETs in a worker thread.

The checkpoint of an .xlsx import is a row number, not a byte offset: a zip part cannot be
entered in the middle, so a resumed run reads the sheet from its start and skips the rows
before the checkpoint (cheap next to writing them). The first pass reads only up to the
header; the row count comes from the sheet's own `dimension` when it has one, else from
reading it through once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from filestore.imports.ranged import Fetch
from filestore.imports.records import ImportSource
from filestore.imports.rows import ImportFileError, ValidationRules
from filestore.imports.xlsx import SheetInfo, SheetRow, WorkbookError, stream_rows
from filestore.imports.xlsx_sheet import column_letters

BATCH_ROWS = 1000
_LAST_ROW = re.compile(r"[A-Z]+(\d+)$")


def thread_fetch(source: ImportSource, loop: asyncio.AbstractEventLoop) -> Fetch:
    """A blocking `fetch(start, end)` for the reader's thread: each call runs a ranged read
    of `source` on the event loop and waits for it."""

    def fetch(start: int, end: int) -> bytes:
        return asyncio.run_coroutine_threadsafe(source.read(start, end), loop).result()

    return fetch


async def rows(
    source: ImportSource,
    rules: ValidationRules,
    *,
    batch_rows: int = BATCH_ROWS,
    strings_limit: int | None = None,
) -> AsyncGenerator[tuple[SheetInfo, list[SheetRow]], None]:
    """Batches of the sheet's rows (`strings_limit`: see `read_shared_strings`)."""
    fetch = thread_fetch(source, asyncio.get_running_loop())
    try:
        async for info, batch in stream_rows(
            fetch,
            source.size,
            sheet=rules.sheet,
            batch_rows=batch_rows,
            strings_limit=strings_limit,
        ):
            yield info, batch
    except WorkbookError as exc:
        raise ImportFileError(str(exc)) from exc


@dataclass(frozen=True)
class XlsxPrescan:
    info: SheetInfo
    header: list[str]
    header_line: int
    data_rows: int
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "xlsx", **self.info.to_json()}


def header_names(row: SheetRow) -> tuple[list[str], list[str]]:
    """Column names, an empty one named by its letter; and a warning for those."""
    if row.error is not None:
        raise ImportFileError(f"The header row (row {row.line}) cannot be read: {row.error}")
    names = [cell.strip() or f"(column {column_letters(i)})" for i, cell in enumerate(row.cells)]
    unnamed = [n for n, cell in zip(names, row.cells, strict=True) if not cell.strip()]
    warnings = [f"Header cells without a name: {', '.join(unnamed)}"] if unnamed else []
    return names, warnings


async def prescan(source: ImportSource, rules: ValidationRules) -> XlsxPrescan:
    """The header (the first row with a value) and the number of data rows."""
    header: SheetRow | None = None
    info: SheetInfo | None = None
    counted = 0
    async with aclosing(rows(source, rules)) as sheet:
        async for info, batch in sheet:
            for row in batch:
                if header is None:
                    header = row
                else:
                    counted += 1
            dimension_rows = _dimension_rows(info)
            if header is not None and dimension_rows is not None:
                # The sheet says where it ends: no need to read it all now.
                counted = max(0, dimension_rows - header.line)
                break
    if header is None or info is None:
        raise ImportFileError(
            f"The sheet {info.name!r} has no header row: it is empty" if info else "No rows"
        )
    names, warnings = header_names(header)
    if info.merged:
        warnings.append(
            f"Merged cells near the header ({', '.join(info.merged[:5])}): a merged cell's "
            "text belongs to its first column only"
        )
    return XlsxPrescan(info, names, header.line, counted, warnings)


def _dimension_rows(info: SheetInfo) -> int | None:
    match = _LAST_ROW.search(info.dimension or "")
    return int(match.group(1)) if match and ":" in (info.dimension or "") else None


async def batches(
    source: ImportSource, rules: ValidationRules, *, after_line: int, batch_rows: int
) -> AsyncIterator[list[SheetRow]]:
    """Batches of rows below row `after_line` (the header, or the last checkpoint)."""
    async for _, batch in rows(source, rules, batch_rows=batch_rows):
        kept = [row for row in batch if row.line > after_line]
        if kept:
            yield kept
