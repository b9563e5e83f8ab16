"""How a CSV is written: its delimiter, quote character and header row, sniffed from its start.

`sniff` reads the decoded first bytes of the file (the same bounded prefix the encoding was
decided on), parses them once per candidate delimiter (`,` `;` TAB `|`), and keeps the one
that gives the most records, from the header on, the same number of columns; ties go to the
one that skips fewer records above the header, then to more columns. Records above the
header that look like a title (one cell: a report name, an export date) are reported and
skipped. European Excel writes `;` because `,` is its decimal separator: split by commas,
`Ana;1,50;0,2` rows would look regular too, but would leave the header as a "title" above
them, so `;` wins. The standard library's `csv.Sniffer` was not used: it guesses
any character as a delimiter (a letter, a space) and has no notion of a title above the header.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass

DELIMITERS = (",", ";", "\t", "|")
QUOTES = ('"', "'")
SAMPLE_RECORDS = 200
HEADER_SEARCH_ROWS = 10
_NAMES = {
    ",": "comma",
    ";": "semicolon",
    "\t": "tab",
    "|": "pipe",
    '"': "double quote",
    "'": "single quote",
}


class DialectError(ValueError):
    """The sample cannot be read as CSV with any candidate dialect."""


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quotechar: str
    header_row: int  # records before the header (0: the header is the first record)
    columns: int
    reason: str

    def to_json(self) -> dict[str, str | int]:
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quotechar,
            "header_row": self.header_row,
            "columns": self.columns,
            "reason": self.reason,
        }


def sniff(
    sample: str,
    *,
    complete: bool = False,
    delimiter: str | None = None,
    quotechar: str | None = None,
) -> Dialect:
    """The dialect of a CSV whose decoded start is `sample` (`complete`: the whole file);
    `delimiter` and `quotechar` force a choice instead of sniffing it."""
    body = sample.rstrip("\r")
    if "\r" in body and "\n" not in body:
        raise DialectError(
            "The file ends its lines with CR alone (classic Mac OS): save it again with "
            "Windows or Unix line endings"
        )
    lines = _sample_lines(sample, complete)
    if not lines:
        raise DialectError("The file is empty: it has no header row")
    quote = quotechar or _guess_quote(lines)
    candidates = [delimiter] if delimiter else list(DELIMITERS)
    # Best: most records of the same width, then fewest records skipped above the header
    # (`1,5;2,5` rows split by commas would make the header a "title"), then widest.
    scored: list[tuple[float, int, int, int, str]] = []
    for order, candidate in enumerate(candidates):
        records = _parse(lines, candidate, quote)
        if records is None:
            continue
        columns, header_row, consistency = _shape(records)
        scored.append((consistency, -header_row, columns, -order, candidate))
    if not scored:
        raise DialectError(
            f"The start of the file is not valid CSV with any of the delimiters "
            f"{', '.join(_NAMES[d] for d in candidates)} and the {_NAMES[quote]} as quote"
        )
    multi = [s for s in scored if s[2] > 1]
    consistency, skipped, columns, _, chosen = max(multi or scored)
    header_row = -skipped
    total = len(_parse(lines, chosen, quote) or []) - header_row
    reason = _reason(chosen, quote, columns, consistency, total, header_row, delimiter)
    return Dialect(chosen, quote, header_row, columns, reason)


def _shape(records: list[list[str]]) -> tuple[int, int, float]:
    """The usual number of columns (the most frequent above one, ties to the wider), the
    header's index, and the share of records from the header on that have that width.

    Records above the header are skipped only when they look like a title: narrower than
    the table and with one non-empty cell at most (a report name, an export date)."""
    counts = Counter(len(r) for r in records)
    wide = {n: hits for n, hits in counts.items() if n > 1} or counts
    columns = max(wide, key=lambda n: (wide[n], n))
    header_row = 0
    for record in records[:HEADER_SEARCH_ROWS]:
        if len(record) >= columns or sum(1 for cell in record if cell.strip()) > 1:
            break
        header_row += 1
    if header_row == len(records):
        header_row = 0
    body = records[header_row:]
    return columns, header_row, sum(1 for r in body if len(r) == columns) / len(body)


def _sample_lines(sample: str, complete: bool) -> list[str]:
    if not complete:
        # The last line may be cut by the end of the prefix: parse only whole lines.
        cut = sample.rfind("\n")
        sample = sample[: cut + 1] if cut >= 0 else sample
    lines = sample.splitlines(keepends=True) if "\n" in sample else [sample]
    kept: list[str] = []
    for line in lines:
        kept.append(line)
        if len(kept) >= SAMPLE_RECORDS * 4:
            break
    return kept if any(line.strip() for line in kept) else []


def _guess_quote(lines: list[str]) -> str:
    """`'` only when a file quotes fields with it and never with `"` (`O'Brien` must not
    count: a quote character opens a field, right after a delimiter or a line start)."""
    text = "".join(lines)
    opens = {q: len(re.findall(rf"(?:^|[,;\t|]){re.escape(q)}", text, re.M)) for q in QUOTES}
    closes = {q: len(re.findall(rf"{re.escape(q)}(?:[,;\t|]|\r?$)", text, re.M)) for q in QUOTES}
    if opens['"'] == 0 and opens["'"] >= 2 and closes["'"] >= 2:
        return "'"
    return '"'


def _parse(lines: list[str], delimiter: str, quote: str) -> list[list[str]] | None:
    """The non-blank records, up to the first that is not valid CSV (an unterminated quote
    at the end is the import's to report, with its line); None when the first one is not."""
    records: list[list[str]] = []
    reader = csv.reader(lines, delimiter=delimiter, quotechar=quote, strict=True)
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                records.append(record)
            if len(records) >= SAMPLE_RECORDS:
                break
    except csv.Error:
        pass
    return records or None


def _reason(
    delimiter: str,
    quote: str,
    columns: int,
    consistency: float,
    total: int,
    header_row: int,
    forced: str | None,
) -> str:
    how = "as given" if forced else f"{round(consistency * total)} of the first {total} records"
    parts = [f"{_NAMES[delimiter]}-separated, {columns} columns ({how})"]
    if columns == 1 and not forced:
        parts = ["one column only: no comma, semicolon, tab or pipe splits the records evenly"]
    if quote != '"':
        parts.append(f"fields quoted with the {_NAMES[quote]}")
    if header_row:
        parts.append(
            f"header on record {header_row + 1}: the {header_row} record(s) above it look "
            "like a title (one cell) and are skipped"
        )
    return "; ".join(parts)
