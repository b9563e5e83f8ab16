"""`errors.csv`: every failed row of an import, safe to open in a spreadsheet.

Cells that a spreadsheet would run as a formula are neutralised with a leading `'`, per
OWASP's CSV-injection guidance: anything starting with = + - @ TAB CR or LF.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
HEADER = ("row", "column", "value", "error")


def neutralise(cell: object) -> str:
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def render_rows(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()


async def stream_csv(
    rows: AsyncIterator[tuple[object, ...]], *, batch: int = 500
) -> AsyncIterator[bytes]:
    """UTF-8 (with BOM, so Excel picks the encoding) CSV lines, a few hundred rows at a time."""
    yield ("\ufeff" + render_rows([HEADER])).encode()
    pending: list[tuple[object, ...]] = []
    async for row in rows:
        pending.append(row)
        if len(pending) >= batch:
            yield render_rows(pending).encode()
            pending.clear()
    if pending:
        yield render_rows(pending).encode()
