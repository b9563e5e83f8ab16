"""Request and response bodies of `POST /files/csv-import` and its preview."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from filestore.imports import decoding, fields, phones
from filestore.schemas import DbId, Schema, StrictInput


class ValidationRulesIn(StrictInput):
    email_required: bool = True
    phone_format: Literal["digits_only", "any", "e164"] = Field(
        default="digits_only",
        description="digits_only: strip formatting; any: as written; e164: +<country><number> "
        "(numbers without a country code need default_region), impossible numbers fail",
    )
    default_region: str | None = Field(
        default=None,
        max_length=2,
        description="Two-letter country code for phone numbers written without one (e164)",
    )
    dry_run: bool = False
    send_invites: bool = Field(
        default=False,
        description="E-mail a set-your-password link to every customer created without a "
        "password, after the import completes (needs SMTP_HOST)",
    )
    encoding: str | None = Field(
        default=None,
        max_length=32,
        description="The CSV's encoding when detection is not wanted: utf-8, utf-16-le, "
        "utf-16-be, windows-1252, latin-1, windows-1250 … windows-1258",
    )
    sheet: str | None = Field(
        default=None,
        max_length=64,
        description="The worksheet of an .xlsx to import (default: the first visible one)",
    )
    on_duplicate: Literal["skip", "update", "update_if_empty"] = Field(
        default="skip",
        description="A row whose e-mail a customer already has: skip it (the seed's way); "
        "update: its non-empty cells replace the customer's fields; update_if_empty: they "
        "fill only the fields that are empty today. Never the e-mail, never the password "
        "(an import sets a password only for a customer it creates; the job warns)",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return decoding.canonical(value)
        except decoding.EncodingError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        try:
            return phones.check_rules(phones.DIGITS_ONLY, value)
        except phones.PhoneRulesError as exc:
            raise ValueError(str(exc)) from None


def _known_targets(mapping: dict[str, str]) -> dict[str, str]:
    unknown = sorted(
        {target for target in mapping.values() if target and fields.resolve(target) is None}
    )
    if unknown:
        raise ValueError(
            f"unknown customer field(s) {', '.join(unknown)}; known: {fields.known_names()}"
        )
    return mapping


MappingConfig = Annotated[
    dict[str, str],
    Field(
        description='CSV column → customer field, e.g. {"name": "full_name"}; a field may '
        "also be named by an alias (name, zip, postcode, mobile, …), which the job's warnings "
        'mention; several columns mapped to one field are joined with a space, e.g. {"First '
        'name": "full_name", "Last name": "full_name"}; a column mapped to "" is not '
        "imported (not even when its header names a field)",
        max_length=64,
    ),
    AfterValidator(_known_targets),
]
TemplateName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)
]


class ImportSpec(StrictInput):
    """What an import and its preview are given: the file, the mapping and the rules."""

    file_upload_id: DbId
    mapping_config: MappingConfig = Field(default_factory=dict)
    mapping_template: TemplateName | None = Field(
        default=None,
        description="The name of a saved mapping (POST /files/csv-import/mappings); "
        "mapping_config entries are applied on top of it",
    )
    validation_rules: ValidationRulesIn = Field(default_factory=ValidationRulesIn)


class MappingTemplateIn(StrictInput):
    name: TemplateName
    mapping_config: MappingConfig


class MappingTemplateOut(Schema):
    id: int
    name: str
    mapping_config: dict[str, str] = Field(validation_alias="mapping")
    created_by: int | None
    created_at: datetime


class CsvImportRequest(ImportSpec):
    import_type: Literal["customers"] = "customers"


class ColumnMatchOut(Schema):
    column: str
    field: str | None
    match: Literal["mapping", "exact", "alias", "fuzzy", "unmapped"]
    why: str


class RowProblem(Schema):
    column: str | None
    value: str | None
    error: str


class PreviewRow(Schema):
    row: int
    verdict: Literal[
        "new", "duplicate_in_file", "duplicate_existing", "update", "invalid", "skipped"
    ]
    values: dict[str, str | None]
    errors: list[RowProblem]
    changes: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    why: str | None = None
    repeated_below: int | None = Field(
        default=None,
        description="A later row with the same e-mail (a duplicate in the file, skipped)",
    )


class DuplicateExample(Schema):
    row: int
    first_row: int
    email: str


class DuplicatesInFile(Schema):
    """Rows that repeat an earlier row's e-mail (ignoring case), within a bounded scan."""

    rows_scanned: int = Field(description="Data rows read from the top (the shown ones too)")
    complete: bool = Field(description="True when that was the whole file")
    duplicate_rows: int
    examples: list[DuplicateExample]
    note: str


class ImportPreview(Schema):
    """How the file would be read, mapped and imported (nothing is written)."""

    file_format: dict[str, Any]
    encoding: str | None = Field(description="Detected (or given) encoding; None for .xlsx")
    delimiter: str | None
    quote_char: str | None
    header_row: int = Field(description="Line (CSV) or row (.xlsx) of the header, from 1")
    header: list[str]
    columns: list[ColumnMatchOut]
    mapping: dict[str, str] = Field(description="column → field, as the import would use it")
    missing_required: list[str]
    warnings: list[str]
    rows: list[PreviewRow]
    duplicates_in_file: DuplicatesInFile
