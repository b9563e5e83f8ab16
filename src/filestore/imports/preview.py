"""The preview of an import: how the file would be read, mapped and imported, without a job.

It reads only the start of the file, in ranged blocks: the encoding and dialect from the first
64 KiB (`csv_source.inspect`), then the header and the first `PREVIEW_ROWS` data rows
(`csv_source.head`), or for a workbook the first rows of its sheet. Its cost does not depend
on the file's length. Each row is validated as the import would (`rows.validate_row`, every
problem reported), then given a verdict against the rows before it and against the customers
already stored (`Lookup`): the database is the only I/O besides the file.

Duplicates in the file are looked for further than the 20 rows shown: the e-mail column of
the rows that follow, up to `DUPLICATE_SCAN_ROWS` rows and `DUPLICATE_SCAN_BYTES` of a CSV
(`DUPLICATE_SCAN_XLSX_ROWS` of a workbook, whose rows cost more to read), is compared ignoring
case (`duplicates_in_file`: rows scanned, whether that was the whole file, the rows that
repeat an earlier e-mail); a shown row whose e-mail comes again below says on which row.

What a preview cannot know: an encoding error or an unterminated quote after the part it read
(the import's first pass finds those before writing anything), and duplicates beyond the
scanned rows (`duplicates_in_file.complete` is false then; the import skips them and counts
them in `skipped_rows`).
"""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

from filestore.imports import csv_source, xlsx_source
from filestore.imports.decoding import PREFIX_BYTES
from filestore.imports.fields import UPDATABLE
from filestore.imports.mapping import (
    ColumnPlan,
    ImportFileError,
    match_columns,
    missing_fields,
    parse_header,
)
from filestore.imports.records import ImportSource, Record
from filestore.imports.rows import REDACTED, RowError, ValidationRules, ValidRow, validate_row
from filestore.imports.xlsx_zip import OLE2_MAGIC, ZIP_MAGIC

PREVIEW_ROWS = 20
# A workbook's shared strings read for the preview: Excel numbers them as it writes the rows,
# so the first rows use the first ones. A cell past them shows as a failed row.
PREVIEW_STRINGS = 20_000
# The header and 20 rows of up to 64 KiB each fit well within this.
MAX_PREVIEW_BYTES = 2 * 1024 * 1024
# How far past the shown rows duplicates in the file are looked for: a bounded scan, so the
# preview of a 1M-row file still answers in well under a second (~60 ms of CPU here for a
# full CSV scan, read in blocks of DUPLICATE_SCAN_BLOCK: three ranged reads).
DUPLICATE_SCAN_ROWS = 20_000
DUPLICATE_SCAN_BYTES = MAX_PREVIEW_BYTES
DUPLICATE_SCAN_BLOCK = 1024 * 1024
DUPLICATE_SCAN_XLSX_ROWS = 2_000
DUPLICATE_EXAMPLES = 10

# lower(email) → the stored customer's fields, for the e-mails asked about.
Lookup = Callable[[list[str]], Awaitable[dict[str, dict[str, str | None]]]]


def changes(
    stored: dict[str, str | None], incoming: dict[str, str | None], on_duplicate: str
) -> dict[str, dict[str, str | None]]:
    """The fields an `update` / `update_if_empty` import would change: a non-empty cell
    replaces the stored value (update), or fills an empty one (update_if_empty)."""
    if on_duplicate not in ("update", "update_if_empty"):
        return {}
    out: dict[str, dict[str, str | None]] = {}
    for name in UPDATABLE:
        new, old = incoming.get(name), stored.get(name)
        if not new or new == old:
            continue
        if on_duplicate == "update_if_empty" and old:
            continue
        out[name] = {"from": old, "to": new}
    return out


def _shown(values: dict[str, str | None]) -> dict[str, str | None]:
    return {k: (REDACTED if k == "password" and v else v) for k, v in values.items()}


def _error(e: RowError) -> dict[str, Any]:
    return {"column": e.column, "value": e.value, "error": e.error}


class DuplicateScan:
    """The e-mails of the rows read, in file order: which rows repeat an earlier one."""

    def __init__(self, column: int | None) -> None:
        self.column = column
        self.rows = 0
        self.first: dict[str, int] = {}  # e-mail -> its first row
        self.later: dict[str, int] = {}  # e-mail -> the first row that repeats it
        self.duplicate_rows = 0
        self.unreadable = 0  # rows that could not be read (their e-mail is not known)
        self.examples: list[dict[str, Any]] = []

    def add(self, line: int, cells: list[str]) -> None:
        self.rows += 1
        if len(cells) == 1 and cells[0][:1] == "\x00":
            self.unreadable += 1
            return
        if self.column is not None and self.column < len(cells):
            self._note(line, cells[self.column].strip().lower())

    def add_records(self, records: list[Record], delimiter: str, quotechar: str) -> None:
        """CSV records past the shown rows: only their e-mail cell is wanted, so a record
        without a quote character is split on the delimiter, not parsed (~5x faster)."""
        column = self.column
        if column is None:
            self.rows += len(records)
            return
        sep, quote = delimiter.encode(), quotechar.encode()
        for record in records:
            data = record.data
            if record.too_long or not quote or quote in data:
                self.add(record.line, _cells(record, delimiter, quotechar))
                continue
            self.rows += 1
            parts = data.split(sep)
            if column < len(parts):
                self._note(record.line, parts[column].strip().lower().decode("utf-8", "replace"))

    def _note(self, line: int, email: str) -> None:
        if not email:
            return
        first = self.first.setdefault(email, line)
        if first == line:
            return
        self.duplicate_rows += 1
        self.later.setdefault(email, line)
        if len(self.examples) < DUPLICATE_EXAMPLES:
            self.examples.append({"row": line, "first_row": first, "email": email})

    def to_json(self, *, complete: bool) -> dict[str, Any]:
        complete = complete and self.column is not None and not self.unreadable
        if self.column is None:
            note = "No e-mail column is mapped: duplicates cannot be looked for"
        elif complete:
            note = f"The whole file was scanned: {self.rows} data rows"
        else:
            note = (
                f"Only the first {self.rows} data rows were scanned; duplicates further down "
                "are skipped by the import and counted in skipped_rows"
            )
            if self.unreadable:
                note += f" ({self.unreadable} of them could not be read here)"
        return {
            "rows_scanned": self.rows,
            "complete": complete,
            "duplicate_rows": self.duplicate_rows,
            "examples": self.examples,
            "note": note,
        }


async def verdicts(
    rows: list[tuple[int, list[str]]],
    plan: ColumnPlan,
    rules: ValidationRules,
    lookup: Lookup,
    repeated_below: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Each row as it would be imported, with its verdict: new, duplicate_in_file,
    duplicate_existing, update, skipped (no e-mail where one is optional) or invalid (with
    every problem, by column)."""
    checked: list[tuple[int, ValidRow | RowError | None, list[RowError]]] = []
    for line, cells in rows:
        problems: list[RowError] = []
        checked.append((line, validate_row(line, cells, plan, rules, errors=problems), problems))
    emails = sorted(
        {str(r.values["email"]).lower() for _, r, _ in checked if isinstance(r, ValidRow)}
    )
    stored = await lookup(emails) if emails else {}
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for line, result, problems in checked:
        item: dict[str, Any] = {"row": line, "verdict": "skipped", "values": {}, "errors": []}
        out.append(item)
        if isinstance(result, RowError):
            item["verdict"], item["errors"] = "invalid", [_error(e) for e in problems or [result]]
            continue
        if result is None:
            item["why"] = "no e-mail: rows without one are skipped when email_required is false"
            continue
        item["values"] = _shown(result.values)
        if result.warning is not None:
            item["warnings"] = [result.warning.error]
        email = str(result.values["email"]).lower()
        if email in seen:
            item["verdict"] = "duplicate_in_file"
            item["why"] = "an earlier row has this e-mail; the first one counts"
            continue
        seen.add(email)
        if repeated_below and email in repeated_below:
            item["repeated_below"] = repeated_below[email]
        customer = stored.get(email)
        if customer is None:
            item["verdict"] = "new"
            continue
        found = changes(customer, result.values, rules.on_duplicate)
        if found:
            item["verdict"], item["changes"] = "update", found
        else:
            item["verdict"] = "duplicate_existing"
            item["why"] = (
                "a customer has this e-mail; on_duplicate=skip leaves it as it is"
                if rules.on_duplicate == "skip"
                else "a customer has this e-mail and the file changes none of its fields"
            )
    return out


class _Head:
    """What the preview read: the format, the header, every data row read (the first
    PREVIEW_ROWS are shown, the rest only scanned for duplicates), whether that was all."""

    def __init__(self, file_format: dict[str, Any], header: list[str]) -> None:
        self.file_format = file_format
        self.header = header
        self.rows: list[tuple[int, list[str]]] = []
        # A CSV's records after the shown rows, with its delimiter and quote character.
        self.more: list[Record] = []
        self.dialect = (",", '"')
        self.complete = False
        self.warnings: list[str] = []


def _cells(record: Record, delimiter: str, quotechar: str) -> list[str]:
    """A CSV record's cells, or one cell starting with NUL that says why there are none."""
    if record.too_long:
        return ["\x00Row is longer than 64 KiB"]
    try:
        return next(
            csv.reader([record.data.decode("utf-8")], delimiter=delimiter, quotechar=quotechar)
        )
    except csv.Error as exc:
        return [f"\x00Row is not valid CSV: {exc}"]


async def _csv_head(source: ImportSource, prefix: bytes, rules: ValidationRules) -> _Head:
    fmt = await csv_source.inspect(source, prefix, rules)
    wanted = PREVIEW_ROWS + DUPLICATE_SCAN_ROWS
    read = await csv_source.head(
        source,
        fmt,
        rows=wanted,
        max_bytes=max(MAX_PREVIEW_BYTES, DUPLICATE_SCAN_BYTES, PREFIX_BYTES),
        prefix=prefix,
        block_bytes=DUPLICATE_SCAN_BLOCK,
    )
    d, q = fmt.dialect.delimiter, fmt.dialect.quotechar
    head = _Head(
        {**fmt.to_json(), "header_line": read.header_line},
        parse_header(read.header_text, delimiter=d, quotechar=q),
    )
    head.rows = [(r.line, _cells(r, d, q)) for r in read.records[:PREVIEW_ROWS]]
    head.more, head.dialect = read.records[PREVIEW_ROWS:], (d, q)
    head.complete = read.bytes_read >= source.size and len(read.records) < wanted
    return head


async def _xlsx_head(source: ImportSource, rules: ValidationRules) -> _Head:
    header: list[str] | None = None
    warnings: list[str] = []
    info: Any = None
    rows: list[tuple[int, list[str]]] = []
    wanted = PREVIEW_ROWS + DUPLICATE_SCAN_XLSX_ROWS
    complete = True
    sheet_rows = xlsx_source.rows(
        source, rules, batch_rows=PREVIEW_ROWS + 1, strings_limit=PREVIEW_STRINGS
    )
    async with aclosing(sheet_rows) as sheet:
        async for sheet_info, batch in sheet:
            info = sheet_info
            for row in batch:
                if header is None:
                    header, warnings = xlsx_source.header_names(row)
                    header_line = row.line
                elif row.error is not None:
                    rows.append((row.line, [f"\x00{row.error}"]))
                else:
                    rows.append((row.line, row.cells + [""] * (len(header) - len(row.cells))))
            if header is not None and len(rows) >= wanted:
                complete = False
                break
    if header is None or info is None:
        raise ImportFileError("The sheet has no header row: it is empty")
    head = _Head({"kind": "xlsx", **info.to_json(), "header_line": header_line}, header)
    head.rows, head.complete, head.warnings = rows, complete, warnings
    return head


async def preview(
    source: ImportSource, *, mapping: dict[str, str], rules: ValidationRules, lookup: Lookup
) -> dict[str, Any]:
    """The whole preview (see the module's docstring). Raises `ImportFileError` when the file
    cannot be read at all (its encoding cannot be decided, no header, not a workbook)."""
    prefix = await source.read(0, PREFIX_BYTES)
    if prefix.startswith(ZIP_MAGIC) or prefix.startswith(OLE2_MAGIC):
        head = await _xlsx_head(source, rules)
    else:
        head = await _csv_head(source, prefix, rules)
    file_format, header, warnings = head.file_format, head.header, head.warnings
    plan = match_columns(header, mapping)
    scan = DuplicateScan(plan.field_index.get("email"))
    for line, cells in head.rows:
        scan.add(line, cells)
    scan.add_records(head.more, *head.dialect)
    rows = head.rows[:PREVIEW_ROWS]
    broken = [(line, cells) for line, cells in rows if len(cells) == 1 and cells[0][:1] == "\x00"]
    checked = await verdicts(
        [r for r in rows if r not in broken], plan, rules, lookup, repeated_below=scan.later
    )
    for line, cells in broken:
        error = {"column": None, "value": None, "error": cells[0][1:]}
        checked.append({"row": line, "verdict": "invalid", "values": {}, "errors": [error]})
    checked.sort(key=lambda item: int(item["row"]))
    missing = missing_fields(plan, email_required=rules.email_required)
    return {
        "file_format": file_format,
        "encoding": file_format.get("encoding"),
        "delimiter": file_format.get("delimiter"),
        "quote_char": file_format.get("quotechar"),
        "header_row": file_format["header_line"],
        "header": header,
        "columns": [m.to_json() for m in plan.matches],
        "mapping": {plan.header[i]: name for name, i in plan.field_index.items()}
        | {plan.header[i]: name for name, cols in plan.joined.items() for i in cols},
        "missing_required": missing,
        "warnings": warnings + plan.warnings,
        "rows": checked,
        "duplicates_in_file": scan.to_json(complete=head.complete),
    }
