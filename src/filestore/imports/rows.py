"""Pure logic of a customer import: header → field mapping, and row validation.

No I/O here, so it is fast to test and fast to run: the worker calls it for every row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from filestore.auth import passwords
from filestore.imports import phones
from filestore.imports.mapping import ColumnPlan as ColumnPlan
from filestore.imports.mapping import ImportFileError as ImportFileError
from filestore.imports.mapping import match_columns, missing_fields
from filestore.imports.mapping import parse_header as parse_header

REDACTED = "***"
_EMAIL = re.compile(r"^[^@\s,;<>()\[\]\\\"]+@[^@\s,;<>()\[\]\\\"]+\.[^@\s,;<>()\[\]\\\".]{2,}$")


@dataclass
class ValidationRules:
    """The seed's rules by default: e-mail required, phone digits only. `encoding` and
    `sheet` choose how the file is read (None: detected, the first sheet)."""

    email_required: bool = True
    phone_format: str = "digits_only"
    dry_run: bool = False
    send_invites: bool = False
    default_region: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    on_duplicate: str = "skip"

    @classmethod
    def from_params(cls, rules: dict[str, Any]) -> ValidationRules:
        return cls(
            email_required=bool(rules.get("email_required", True)),
            phone_format=str(rules.get("phone_format") or "digits_only"),
            dry_run=bool(rules.get("dry_run", False)),
            send_invites=bool(rules.get("send_invites", False)),
            default_region=rules.get("default_region") or None,
            encoding=rules.get("encoding") or None,
            sheet=rules.get("sheet") or None,
            on_duplicate=str(rules.get("on_duplicate") or "skip"),
        )


def plan_columns(header: list[str], mapping: dict[str, str], rules: ValidationRules) -> ColumnPlan:
    """The import's column plan (`mapping.match_columns`); a file without a column for a
    required field cannot be imported."""
    plan = match_columns(header, mapping)
    missing = missing_fields(plan, email_required=rules.email_required)
    if missing:
        raise ImportFileError(
            f"Required field{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"{'have' if len(missing) > 1 else 'has'} no column in the file "
            f"(columns: {', '.join(header)})"
        )
    if "email" not in plan.field_index:
        plan.warnings.append("The file has no email column: every row will be skipped")
    return plan


@dataclass
class RowError:
    row: int
    column: str | None
    value: str | None
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, "error": self.error}


@dataclass
class ValidRow:
    line: int
    values: dict[str, str | None]
    # Imported, but with something the job's report must mention (a refused password).
    warning: RowError | None = None


def _display(column: str, value: str) -> str:
    return REDACTED if column == "password" else value[:200]


def _column(plan: ColumnPlan, field_name: str) -> str | None:
    """The header of the column feeding `field_name`, looked up only when a row fails (a
    field → column table built for every row cost a sixth of the validation time)."""
    index = plan.field_index.get(field_name)
    return None if index is None else plan.header[index]


def _cell_values(
    cells: list[str], plan: ColumnPlan, errors: list[RowError] | None, line: int
) -> tuple[dict[str, str | None], RowError | None]:
    values: dict[str, str | None] = {}
    for name, index, limit, joined in plan.cell_fields:
        if joined is None:
            value = cells[index].strip()
        else:
            value = " ".join(part for i in joined if (part := cells[i].strip()))
        if len(value) > limit:
            failed = RowError(
                line,
                plan.header[index],
                _display(name, value),
                f"{name} is longer than {limit} characters",
            )
            if errors is None:
                return values, failed
            errors.append(failed)
            continue
        values[name] = value or None
    return values, None


def validate_row(
    line: int,
    cells: list[str],
    plan: ColumnPlan,
    rules: ValidationRules,
    *,
    errors: list[RowError] | None = None,
) -> ValidRow | RowError | None:
    """A valid row, the first error of an invalid one, or None for a row to skip (no email
    when e-mail is optional). With `errors`, every problem of the row is appended to it (one
    per column, for the preview) and the first is returned."""
    if len(cells) != len(plan.header):
        return RowError(
            line, None, None, f"Row has {len(cells)} columns, the header has {len(plan.header)}"
        )
    values, failed = _cell_values(cells, plan, errors, line)
    if failed is not None:
        return failed
    problems: list[RowError] = [] if errors is None else errors
    # On failure: return the error, unless every problem is asked for (`errors`).
    if not values.get("full_name") and "full_name" not in _failed_fields(plan, problems):
        problems.append(RowError(line, _column(plan, "full_name"), "", "full_name is required"))
        if errors is None:
            return problems[0]
    email = values.get("email")
    if not email:
        if "email" in _failed_fields(plan, problems):
            pass
        elif rules.email_required:
            problems.append(RowError(line, _column(plan, "email"), "", "email is required"))
            if errors is None:
                return problems[0]
        elif not problems:
            return None
    elif not _EMAIL.match(email):
        message = "email is not a valid e-mail address"
        problems.append(RowError(line, _column(plan, "email"), email[:200], message))
        if errors is None:
            return problems[0]
    phone = values.get("phone")
    if phone:
        try:
            values["phone"] = phones.normalise_phone(
                phone, rules.phone_format, rules.default_region
            )
        except phones.PhoneError as exc:
            problems.append(RowError(line, _column(plan, "phone"), phone[:200], str(exc)))
            if errors is None:
                return problems[0]
    if problems:
        return problems[0]
    row = ValidRow(line, values)
    password = values.get("password")
    if password and email:
        weak = passwords.problem(password, username=email, email=email)
        if weak is not None:
            # The customer is still imported, without this password: it must set one through a
            # reset link (`password_reset_required`).
            values["password"] = None
            row.warning = RowError(
                line,
                _column(plan, "password"),
                REDACTED,
                f"warning: password not used ({weak.message}); the customer must set one "
                "with a password reset link",
            )
    return row


def _failed_fields(plan: ColumnPlan, problems: list[RowError]) -> set[str]:
    """Fields already reported (too long), so a too-long name is not also 'required'."""
    if not problems:
        return set()
    columns = {p.column for p in problems}
    return {name for name, index in plan.field_index.items() if plan.header[index] in columns}
