"""Header → field mapping: which columns feed which customer field, how sure, and why.

Pure logic, shared by the import (`rows.plan_columns`) and the preview, so the preview shows
exactly the mapping the import will use. The request's `mapping_config` comes first; several
columns mapped to one field are joined with a space, in the file's column order. The other
columns match a field by name (`exact`), then by alias (`alias`), ignoring case, spaces and
punctuation. A column that only looks like a field (`Emial`) is a `fuzzy` suggestion: the
preview shows it, the import does not use it unless the mapping names it — a guess must not
decide where data lands.
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from filestore.imports import fields
from filestore.imports.fields import normalise

Match = Literal["mapping", "exact", "alias", "fuzzy", "unmapped"]
FUZZY_CUTOFF = 0.8
_CANDIDATES = {
    normalise(word): f.name for f in fields.FIELDS for word in (f.name, *f.aliases) if word
}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; the message says why, for the job's user."""


@dataclass(frozen=True)
class ColumnMatch:
    """One column of the header: the field it feeds (or would, for `fuzzy`) and why."""

    column: str
    field: str | None
    match: Match
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "field": self.field, "match": self.match, "why": self.reason}


@dataclass
class ColumnPlan:
    """Which column feeds which customer field; computed once from the header. `joined`
    lists, in column order, the columns of a field fed by several (`field_index` then holds
    the first of them)."""

    header: list[str]
    field_index: dict[str, int]
    unknown_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    joined: dict[str, list[int]] = field(default_factory=dict)
    # For the preview only (not saved with the job).
    matches: list[ColumnMatch] = field(default_factory=list, compare=False)

    @cached_property
    def cell_fields(self) -> list[tuple[str, int, int, list[int] | None]]:
        """(field, column, its length limit, the joined columns or None) for each mapped
        field: what validation walks for every row, built once (a plan is not changed once
        rows are validated against it). Looking these up per row cost ~20% of the parse."""
        return [
            (name, index, fields.FIELD_LIMITS[name], self.joined.get(name))
            for name, index in self.field_index.items()
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "field_index": self.field_index,
            "unknown_columns": self.unknown_columns,
            "warnings": self.warnings,
            "joined": self.joined,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnPlan:
        return cls(
            header=list(data["header"]),
            field_index={str(k): int(v) for k, v in data["field_index"].items()},
            unknown_columns=list(data.get("unknown_columns", [])),
            warnings=list(data.get("warnings", [])),
            joined={str(k): [int(i) for i in v] for k, v in (data.get("joined") or {}).items()},
        )


def parse_header(line: str, *, delimiter: str = ",", quotechar: str = '"') -> list[str]:
    rows = list(csv.reader([line], delimiter=delimiter, quotechar=quotechar))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ImportFileError("The file has no header row")
    return [cell.strip() for cell in rows[0]]


def fuzzy_field(column: str) -> tuple[str, str, float] | None:
    """The field a column name looks like (a typo of a name or alias): field, word, score."""
    name = normalise(column)
    if len(name) < 3:
        return None
    best = difflib.get_close_matches(name, _CANDIDATES, n=1, cutoff=FUZZY_CUTOFF)
    if not best:
        return None
    score = difflib.SequenceMatcher(None, name, best[0]).ratio()
    return _CANDIDATES[best[0]], best[0], score


class _Matcher:
    def __init__(self, header: list[str]) -> None:
        self.plan = ColumnPlan(header=header, field_index={})
        self.by_column: dict[int, ColumnMatch] = {}

    def take(self, index: int, field_name: str, match: Match, reason: str) -> None:
        plan = self.plan
        if field_name in plan.field_index:
            columns = plan.joined.setdefault(field_name, [plan.field_index[field_name]])
            columns.append(index)
            columns.sort()
            plan.field_index[field_name] = columns[0]
            names = ", ".join(repr(plan.header[i]) for i in columns)
            reason += f"; joined with a space to the other columns of {field_name} ({names})"
        else:
            plan.field_index[field_name] = index
        self.by_column[index] = ColumnMatch(plan.header[index], field_name, match, reason)

    def from_mapping(self, mapping: dict[str, str]) -> None:
        header, plan = self.plan.header, self.plan
        by_normalised: dict[str, int] = {}
        for position, name in enumerate(header):
            by_normalised.setdefault(normalise(name), position)
        for column, target in mapping.items():
            index: int | None = (
                header.index(column) if column in header else by_normalised.get(normalise(column))
            )
            resolved = fields.resolve(target)
            if index is None:
                plan.warnings.append(f"Mapped column {column!r} is not in the file's header")
            elif not target and index not in self.by_column:
                why = 'mapping_config maps it to "": not imported'
                self.by_column[index] = ColumnMatch(header[index], None, "unmapped", why)
            elif resolved is None:  # refused by the request schema; only an old stored job
                plan.warnings.append(
                    f"Column {column!r} ignored: {target!r} is not a customer field"
                )
            elif index in self.by_column:
                plan.warnings.append(f"Column {column!r} is mapped twice; the first one counts")
            else:
                if resolved.alias is not None:
                    plan.warnings.append(
                        f"column {column!r} mapped to {target!r}, read as {resolved.field}"
                    )
                self.take(index, resolved.field, "mapping", f"mapping_config maps it to {target!r}")

    def by_header(self) -> None:
        plan = self.plan
        for kind in ("exact", "alias"):
            for index, name in enumerate(plan.header):
                found = fields.by_name(name) if kind == "exact" else fields.by_alias(name)
                if index in self.by_column or found is None or found in plan.field_index:
                    continue
                if kind == "exact":
                    reason = f"the header is the field's name ({found})"
                else:
                    reason = f"the header is a common name for {found}"
                    plan.warnings.append(f"column {name!r} read as {found}")
                self.take(index, found, "exact" if kind == "exact" else "alias", reason)

    def rest(self) -> None:
        plan = self.plan
        for index, name in enumerate(plan.header):
            if index in self.by_column:
                continue
            guess = fuzzy_field(name)
            if guess is None:
                why = "no customer field has this name or a name like it"
                self.by_column[index] = ColumnMatch(name, None, "unmapped", why)
                continue
            field_name, word, score = guess
            taken = field_name in plan.field_index
            why = (
                f"looks like {word!r} (similarity {score:.2f}); not imported unless "
                f"mapping_config maps it to {field_name}"
                + (", which another column already feeds" if taken else "")
            )
            self.by_column[index] = ColumnMatch(name, field_name, "fuzzy", why)
        plan.matches = [self.by_column[i] for i in range(len(plan.header))]
        plan.unknown_columns = [m.column for m in plan.matches if m.match in ("fuzzy", "unmapped")]


def match_columns(header: list[str], mapping: dict[str, str]) -> ColumnPlan:
    """Map header columns to fields: `mapping` first (column → field or alias; several
    columns to one field are joined), then the other columns by field name, then by alias
    (so `full_name` wins over `name`). Never raises: see `missing_fields`."""
    matcher = _Matcher(header)
    matcher.from_mapping(mapping)
    matcher.by_header()
    matcher.rest()
    return matcher.plan


def missing_fields(plan: ColumnPlan, *, email_required: bool) -> list[str]:
    """The required fields no column feeds."""
    required = [*fields.REQUIRED, *(["email"] if email_required else [])]
    return [name for name in required if name not in plan.field_index]
