"""A batch of CSV records → validated rows, failed rows and a count of skipped ones (pure, CPU
only; the runner calls it between two awaits)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

from filestore.imports.records import MAX_RECORD_BYTES, Record, gc_paused
from filestore.imports.rows import ColumnPlan, RowError, ValidationRules, ValidRow, validate_row


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


def parse_batch(records: list[Record], plan: ColumnPlan, rules: ValidationRules) -> BatchOutcome:
    """Decode, split into cells and validate a batch of records."""
    with gc_paused():
        return _parse_batch(records, plan, rules)


def _parse_batch(records: list[Record], plan: ColumnPlan, rules: ValidationRules) -> BatchOutcome:
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
        parsed = list(csv.reader(texts))
    except csv.Error:
        parsed = []
        for text in texts:
            try:
                parsed.extend(csv.reader([text]))
            except csv.Error as exc:
                parsed.append([f"\x00{exc}"])
    for line, cells in zip(lines, parsed, strict=True):
        if len(cells) == 1 and cells[0].startswith("\x00"):
            outcome.errors.append(
                RowError(line, None, None, f"Row is not valid CSV: {cells[0][1:]}")
            )
            continue
        result = validate_row(line, cells, plan, rules)
        if result is None:
            outcome.skipped += 1
        elif isinstance(result, RowError):
            outcome.errors.append(result)
        else:
            outcome.valid.append(result)
    return outcome
