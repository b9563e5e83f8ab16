"""Scanning a worksheet's XML and the shared string table for cells, a chunk at a time.

The parts are machine-written SpreadsheetML with a fixed shape (`<row><c r t><v>..</v></c>`),
so they are scanned with regular expressions over whole rows rather than parsed element by
element: measured here on a 200k-row sheet (loaded machine), expat with Python callbacks (5
per cell) took 61 s, ElementTree's pull parser 54 s for the bare walk, this scan 20 s, and
its usual-row path (`_PLAIN_CELL`, one `findall` per row) ~10 s of CPU. The scan expands no
entity but the XML ones, so no entity bomb, and a DOCTYPE is refused; text is cut into whole
rows, so memory is one chunk plus one row (at most `MAX_PENDING_CHARS`).
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from filestore.imports.shared_strings import SharedStrings
from filestore.imports.xlsx_zip import WorkbookError

MAX_COLUMNS = 1024
MAX_CELL_CHARS = 32_767
MAX_ROW_CHARS = 64 * 1024
MAX_PENDING_CHARS = 64 * 1024 * 1024

_P = r"(?:[\w.-]+:)?"  # an optional namespace prefix
_ROW = re.compile(rf"<{_P}row\b([^>]*?)(?:/>|>(.*?)</{_P}row>)", re.S)
_ROW_END = re.compile(rf"</{_P}row>|<{_P}row\b[^>]*/>")
# A cell: its attributes, then its value when it is only `<v>..</v>` (most cells), nothing
# when it is `<c .../>`, or else its whole content.
_CELL = re.compile(
    rf"<{_P}c\b([^>]*)>(?:<{_P}v>([^<]*)</{_P}v></{_P}c>|(?<=/>)|(.*?)</{_P}c>)", re.S
)
_V = re.compile(rf"<{_P}v(?:\s[^>]*)?>(.*?)</{_P}v>", re.S)
_T = re.compile(rf"<{_P}t(?:\s[^>]*)?>(.*?)</{_P}t>", re.S)
_F = re.compile(rf"<{_P}f\b")
_PHONETIC = re.compile(rf"<{_P}rPh\b.*?</{_P}rPh>", re.S)
_SI = re.compile(
    rf"<{_P}si>(?:<{_P}t>([^<]*)</{_P}t>|(.*?))</{_P}si>|<{_P}si/>",
    re.S,
)
_SI_END = re.compile(rf"</{_P}si>|<{_P}si/>")
_CELL_REF = re.compile(r"""\br\s*=\s*["']([A-Z]{1,3})(\d+)["']""")
_ROW_NUMBER = re.compile(r"""\br\s*=\s*["'](\d+)["']""")
_TYPE = re.compile(r"""\bt\s*=\s*["'](\w+)["']""")
_DIMENSION = re.compile(rf"""<{_P}dimension\s+ref\s*=\s*["']([^"']*)["']""")
_PLAIN_CELL = re.compile(
    r'<c r="([A-Z]{1,3})\d+"(?: s="\d+")?(?: t="([a-z]+)")?(?:/>|><v>([^<]*)</v></c>)'
)
_SLOW = object()
_COLUMNS: dict[str, int] = {}  # column letters → index, filled as met (at most 16,384)
_MERGE = re.compile(rf"""<{_P}mergeCell\s+ref\s*=\s*["']([A-Z]+)(\d+)(:[A-Z]+\d+)?["']""")


@dataclass
class SheetRow:
    """One row: `line` is its row number in the sheet (rows Excel left out are blank)."""

    line: int
    cells: list[str]
    error: str | None = None


def column_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - 64
    return index - 1


def column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _text(raw: str) -> str:
    return html.unescape(raw) if "&" in raw else raw


def _whole(chunks: Iterable[bytes], end: re.Pattern[str], literal: str, what: str) -> Iterator[str]:
    """The decoded part in pieces that end just after an `end` match (`literal` is its
    usual, unprefixed form, found faster), so no element that `end` closes is ever cut."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    pending = ""
    first = True
    try:
        for chunk in chunks:
            pending += decoder.decode(chunk)
            if first:
                if "<!DOCTYPE" in pending[:4096].upper():
                    raise WorkbookError(f"The workbook's {what} has a DOCTYPE; .xlsx never has")
                first = False
            start = max(0, len(pending) - len(chunk) * 2 - 64)
            cut = pending.rfind(literal, start) + len(literal)
            if cut < len(literal):
                cut = 0
                for match in end.finditer(pending, start):
                    cut = match.end()
            if cut == 0 and len(pending) > MAX_PENDING_CHARS:
                raise WorkbookError(
                    f"The workbook's {what} has a single row or text over "
                    f"{MAX_PENDING_CHARS // 1024 // 1024} MB"
                )
            if cut:
                yield pending[:cut]
                pending = pending[cut:]
        pending += decoder.decode(b"", True)
    except UnicodeDecodeError as exc:
        raise WorkbookError(f"The workbook's {what} is not valid UTF-8 XML") from exc
    yield pending


def _rich(body: str) -> str:
    """Rich text: the runs' texts, without the phonetic guides (furigana)."""
    if "rPh" in body:
        body = _PHONETIC.sub("", body)
    return "".join(_text(t) for t in _T.findall(body))


def read_shared_strings(chunks: Iterable[bytes], limit: int | None = None) -> SharedStrings:
    """The table; with `limit`, only about its first `limit` strings (the preview's: the
    first rows of a sheet use the first strings, and the rest is never decompressed)."""
    strings = SharedStrings()
    for text in _whole(chunks, _SI_END, "</si>", "shared strings"):
        values = [_rich(rich) if rich else _text(plain) for plain, rich in _SI.findall(text)]
        strings.extend([v if len(v) <= MAX_CELL_CHARS else v[: MAX_CELL_CHARS + 1] for v in values])
        if limit is not None and len(strings) >= limit:
            break
    strings.finish()
    return strings


class SheetScan:
    """Rows of a worksheet part; `dimension` and `merged` (ranges in the first ten rows) are
    filled in as the scan meets them."""

    def __init__(self, strings: SharedStrings) -> None:
        self.strings = strings
        self.dimension: str | None = None
        self.merged: list[str] = []
        self._line = 0

    def rows(self, chunks: Iterable[bytes], batch_rows: int) -> Iterator[list[SheetRow]]:
        batch: list[SheetRow] = []
        for text in _whole(chunks, _ROW_END, "</row>", "sheet"):
            if self.dimension is None and self._line == 0:
                found = _DIMENSION.search(text, 0, 4096)
                self.dimension = found.group(1) if found else ""
            for match in _ROW.finditer(text):
                row = self._row(match.group(1), match.group(2) or "")
                if row is not None:
                    batch.append(row)
            if "mergeCell" in text:
                self._merges(text)
            if len(batch) >= batch_rows:
                yield batch
                batch = []
        yield batch

    def _merges(self, text: str) -> None:
        for match in _MERGE.finditer(text):
            if int(match.group(2)) <= 10 and len(self.merged) < 100:
                self.merged.append(match.group(1) + match.group(2) + (match.group(3) or ""))

    def _row(self, attrs: str, body: str) -> SheetRow | None:
        number = _ROW_NUMBER.search(attrs)
        line = self._line = int(number.group(1)) if number else self._line + 1
        fast = self._plain_row(line, body)
        return self._any_row(line, body) if fast is _SLOW else fast  # type: ignore[return-value]

    def _plain_row(self, line: int, body: str) -> SheetRow | object | None:
        """The row when all its cells are Excel's usual `<c r s t><v>` numbers or shared
        text within the limits (one findall, no match objects: 3x faster); else _SLOW."""
        found = _PLAIN_CELL.findall(body)
        if len(found) != body.count("<c ") or (not found and "<" in body):
            return _SLOW
        columns = _COLUMNS
        get = self.strings.get
        cells: list[str] = []
        chars = 0
        try:
            for letters, kind, v in found:
                if not v:
                    continue
                column = columns.get(letters)
                if column is None:
                    column = columns.setdefault(letters, column_index(letters))
                if kind == "s":
                    value = get(int(v))
                elif not kind:
                    value = _number(v)
                else:
                    return _SLOW
                chars += len(value)
                if column >= MAX_COLUMNS or len(value) > MAX_CELL_CHARS or chars > MAX_ROW_CHARS:
                    return _SLOW
                if not value:
                    continue
                if column == len(cells):
                    cells.append(value)
                elif column > len(cells):
                    cells.extend([""] * (column - len(cells)))
                    cells.append(value)
                else:  # cells out of order: the general path sorts it out
                    return _SLOW
        except (ValueError, IndexError):
            return _SLOW
        return SheetRow(line, cells) if cells else None

    def _any_row(self, line: int, body: str) -> SheetRow | None:
        cells: dict[int, str] = {}
        error: str | None = None
        column = 0
        chars = 0
        columns = _COLUMNS
        for cell in _CELL.finditer(body):
            attrs, v, rest = cell.groups()
            ref = _CELL_REF.search(attrs)
            if ref is not None:
                letters = ref.group(1)
                known = columns.get(letters)
                column = (
                    known
                    if known is not None
                    else columns.setdefault(letters, column_index(letters))
                )
            value, problem = self._value(attrs, v, rest)
            column += 1
            chars += len(value)
            if problem is None and value:
                if column > MAX_COLUMNS:
                    problem = f"Row has a cell in column {{cell}} (an import reads {MAX_COLUMNS})"
                elif len(value) > MAX_CELL_CHARS:
                    problem = (
                        f"Cell {{cell}} has more than {MAX_CELL_CHARS} characters (Excel's limit)"
                    )
                elif chars > MAX_ROW_CHARS:
                    problem = f"Row is longer than {MAX_ROW_CHARS} characters"
            if problem is not None:
                error = problem.replace("{cell}", f"{column_letters(column - 1)}{line}")
                break
            if value:
                cells[column - 1] = value
        if not cells and error is None:
            return None
        row = [""] * (max(cells, default=-1) + 1)
        for index, value in cells.items():
            row[index] = value
        return SheetRow(line, row, error)

    def _value(self, attrs: str, v: str | None, body: str | None) -> tuple[str, str | None]:
        if 't="s"' in attrs:
            kind = "s"
        elif "t" in attrs:
            kind_match = _TYPE.search(attrs)
            kind = kind_match.group(1) if kind_match else "n"
        else:
            kind = "n"
        if v is None and body:
            if kind == "inlineStr":
                return _rich(body), None
            found = _V.search(body)
            if found is None:
                if _F.search(body):
                    return "", (
                        "Cell {cell} has a formula but no value saved with it: open the file in "
                        "Excel, save it, and upload it again"
                    )
                return "", None
            v = found.group(1)
        if v is None:
            return "", None
        if kind == "s":
            try:
                return self.strings.get(int(v)), None
            except (ValueError, IndexError):
                return "", f"Cell {{cell}} refers to shared text {v!r}, which the workbook lacks"
        if kind == "n":
            return _number(v), None
        if kind == "b":
            return ("TRUE" if v.strip() == "1" else "FALSE"), None
        return _text(v), None  # str (a formula's text), e (an error code), d (an ISO date)


def _number(raw: str) -> str:
    """Excel's number as a person would type it: 15551234567, 1.5, not 1.5551234567E10."""
    if "E" not in raw and "e" not in raw and not raw.endswith(".0"):
        return raw.strip()
    try:
        number = float(raw)
    except ValueError:
        return raw
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number)
