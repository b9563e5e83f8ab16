"""A batch of CSV records or worksheet rows → validated rows, failed rows and a count of
skipped ones (pure, CPU only; the runner calls it between two awaits)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

from filestore.imports.records import MAX_RECORD_BYTES, Record, gc_paused
from filestore.imports.rows import ColumnPlan, RowError, ValidationRules, ValidRow, validate_row
from filestore.imports.xlsx_sheet import SheetRow


@dataclass
class BatchOutcome:
    valid: list[ValidRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0

    @property
    def warnings(self) -> list[RowError]:
        """Rows imported with something to report (a refused password)."""
        return [row.warning for row in self.valid if row.warning is not None]

    @property
    def processed(self) -> int:
        return len(self.valid) + len(self.errors) + self.skipped


def parse_batch(
    records: list[Record],
    plan: ColumnPlan,
    rules: ValidationRules,
    *,
    delimiter: str = ",",
    quotechar: str = '"',
) -> BatchOutcome:
    """Decode, split into cells and validate a batch of records."""
    with gc_paused():
        return _parse_batch(records, plan, rules, delimiter, quotechar)


def validate_sheet_rows(
    rows: list[SheetRow], plan: ColumnPlan, rules: ValidationRules
) -> BatchOutcome:
    """Validate a batch of worksheet rows (a row the reader refused fails with its reason;
    cells Excel left empty at the end of a row are empty fields)."""
    outcome = BatchOutcome()
    width = len(plan.header)
    with gc_paused():
        for row in rows:
            if row.error is not None:
                outcome.errors.append(RowError(row.line, None, None, row.error))
                continue
            cells = (
                row.cells + [""] * (width - len(row.cells)) if len(row.cells) < width else row.cells
            )
            _add(outcome, validate_row(row.line, cells, plan, rules))
    return outcome


def _add(outcome: BatchOutcome, result: ValidRow | RowError | None) -> None:
    if result is None:
        outcome.skipped += 1
    elif isinstance(result, RowError):
        outcome.errors.append(result)
    else:
        outcome.valid.append(result)


def _parse_batch(
    records: list[Record],
    plan: ColumnPlan,
    rules: ValidationRules,
    delimiter: str,
    quotechar: str,
) -> BatchOutcome:
    outcome = BatchOutcome()
    texts: list[str] = []
    lines: list[int] = []
    for record in records:
        if record.too_long:
            outcome.errors.append(
                RowError(record.line, None, None, f"Row is longer than {MAX_RECORD_BYTES} bytes")
            )
            continue
        texts.append(record.data.decode("utf-8"))
        lines.append(record.line)
    try:
        parsed = list(csv.reader(texts, delimiter=delimiter, quotechar=quotechar))
    except csv.Error:
        parsed = []
        for text in texts:
            try:
                parsed.extend(csv.reader([text], delimiter=delimiter, quotechar=quotechar))
            except csv.Error as exc:
                parsed.append([f"\x00{exc}"])
    for line, cells in zip(lines, parsed, strict=True):
        if len(cells) == 1 and cells[0].startswith("\x00"):
            outcome.errors.append(
                RowError(line, None, None, f"Row is not valid CSV: {cells[0][1:]}")
            )
            continue
        _add(outcome, validate_row(line, cells, plan, rules))
    return outcome
