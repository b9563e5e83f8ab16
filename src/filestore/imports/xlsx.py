"""Rows of one sheet of an .xlsx workbook, streamed: never the whole sheet in memory.

Chosen by measurement (bench/import_sources.py, docs/benchmarks.md): python-calamine builds
the whole sheet in memory before it gives the first row (its maintainers: pyo3 cannot stream
calamine's reader), and openpyxl's read-only mode streams but keeps every shared string in a
Python list and was the slowest. This reader is the standard library's zip reader over ranged
GETs (`ranged`), the zip's limits (`xlsx_zip`), a scan of the sheet's XML a chunk at a time
(`xlsx_sheet`) and the shared strings held compressed (`shared_strings`).

What the import sees: `SheetRow(line, cells, error)`, cells as text the way Excel shows them
unformatted (a number in its shortest form, `TRUE`/`FALSE`, an error code such as `#N/A`), a
formula as the value Excel saved with it (never evaluated; a formula saved without a value is
an error of its row), from the first visible worksheet unless `validation_rules.sheet` names
one. Too many columns, a cell over Excel's 32,767 characters or a row over 64 KiB fail their
row; merged cells in the first rows are reported in `SheetInfo.merged`.
"""

from __future__ import annotations

import asyncio
import posixpath
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from filestore.imports.ranged import Fetch, RangeFile
from filestore.imports.xlsx_sheet import SheetRow, SheetScan, read_shared_strings
from filestore.imports.xlsx_zip import Container, WorkbookError

BATCH_ROWS = 1000

_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"

__all__ = ["SheetInfo", "SheetRow", "WorkbookError", "XlsxReader", "stream_rows"]


@dataclass
class SheetInfo:
    """What the job reports about the workbook it read."""

    name: str
    sheets: list[str]
    dimension: str | None = None  # the sheet's own claim of its extent, e.g. "A1:H1000001"
    merged: list[str] = field(default_factory=list)  # merged ranges in the first ten rows
    shared_strings: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "sheet": self.name,
            "sheets": self.sheets,
            "dimension": self.dimension,
            "merged": self.merged,
            "shared_strings": self.shared_strings,
        }


@dataclass
class _Sheet:
    name: str
    path: str
    visible: bool


class XlsxReader:
    """Open a workbook (`file` seekable: a RangeFile over the store), then iterate `rows()`."""

    def __init__(
        self, file: BinaryIO, *, sheet: str | None = None, strings_limit: int | None = None
    ) -> None:
        self.container = Container(file)
        workbook = self._workbook_path()
        targets = self._relationships(workbook)
        sheets = self._sheets(workbook, targets)
        chosen = self._choose(sheets, sheet)
        self.info = SheetInfo(name=chosen.name, sheets=[s.name for s in sheets])
        self._sheet_path = chosen.path
        strings = next((p for kind, p in targets.values() if kind.endswith("/sharedStrings")), "")
        self.strings = read_shared_strings(
            self.container.part(strings) if strings and self.container.has(strings) else [],
            strings_limit,
        )
        self.info.shared_strings = len(self.strings)

    def _xml(self, path: str) -> ET.Element:
        try:
            return ET.fromstring(self.container.small_part(path))
        except ET.ParseError as exc:
            raise WorkbookError(f"The workbook is damaged: {path} is not valid XML") from exc

    def _workbook_path(self) -> str:
        path = "xl/workbook.xml"
        if self.container.has("_rels/.rels"):
            for rel in self._xml("_rels/.rels"):
                if rel.get("Type", "").endswith("/officeDocument"):
                    path = rel.get("Target", path).lstrip("/")
        if not self.container.has(path):
            raise WorkbookError("The file is a zip but not an Excel workbook (no workbook part)")
        return path

    def _relationships(self, workbook: str) -> dict[str, tuple[str, str]]:
        """The workbook's relationships: id → (type, part path)."""
        folder, name = posixpath.split(workbook)
        rels = posixpath.join(folder, "_rels", name + ".rels")
        targets: dict[str, tuple[str, str]] = {}
        if self.container.has(rels):
            for rel in self._xml(rels):
                target = rel.get("Target", "")
                path = target[1:] if target.startswith("/") else posixpath.join(folder, target)
                targets[rel.get("Id", "")] = (rel.get("Type", ""), posixpath.normpath(path))
        return targets

    def _sheets(self, workbook: str, targets: dict[str, tuple[str, str]]) -> list[_Sheet]:
        found: list[_Sheet] = []
        for node in self._xml(workbook).iter():
            if node.tag.rpartition("}")[2] != "sheet":
                continue
            kind, path = targets.get(node.get(_REL_ID, ""), ("", ""))
            if kind.endswith("/worksheet"):  # not chart sheets, dialogs or macro sheets
                visible = node.get("state", "visible") == "visible"
                found.append(_Sheet(node.get("name", ""), path, visible))
        if not found:
            raise WorkbookError("The workbook has no worksheets")
        return found

    def _choose(self, sheets: list[_Sheet], wanted: str | None) -> _Sheet:
        if wanted is None:
            return next((s for s in sheets if s.visible), sheets[0])
        match = next((s for s in sheets if s.name == wanted), None) or next(
            (s for s in sheets if s.name.casefold() == wanted.strip().casefold()), None
        )
        if match is None:
            names = ", ".join(repr(s.name) for s in sheets)
            raise WorkbookError(f"The workbook has no sheet named {wanted!r}; its sheets: {names}")
        return match

    def rows(self, batch_rows: int = BATCH_ROWS) -> Iterator[list[SheetRow]]:
        """Batches of rows with at least one non-empty cell, in sheet order."""
        scan = SheetScan(self.strings)
        for batch in scan.rows(self.container.part(self._sheet_path), batch_rows):
            self.info.dimension = scan.dimension or None
            self.info.merged = scan.merged
            yield batch


async def stream_rows(
    fetch: Fetch,
    size: int,
    *,
    sheet: str | None = None,
    batch_rows: int = BATCH_ROWS,
    strings_limit: int | None = None,
) -> AsyncIterator[tuple[SheetInfo, list[SheetRow]]]:
    """Batches of rows of a workbook in the object store, read in a worker thread over
    ranged GETs (`fetch` from `ranged.store_fetcher`) while the event loop stays free."""
    file: Any = RangeFile(fetch, size)
    reader = await asyncio.to_thread(XlsxReader, file, sheet=sheet, strings_limit=strings_limit)
    batches = reader.rows(batch_rows)
    end: list[SheetRow] = []
    while (batch := await asyncio.to_thread(next, batches, end)) is not end:
        yield reader.info, batch
