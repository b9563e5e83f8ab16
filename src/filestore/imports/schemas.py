"""Request body of `POST /files/csv-import`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from filestore.imports import fields
from filestore.schemas import DbId, StrictInput


class ValidationRulesIn(StrictInput):
    email_required: bool = True
    phone_format: Literal["digits_only", "any"] = "digits_only"
    dry_run: bool = False
    send_invites: bool = Field(
        default=False,
        description="E-mail a set-your-password link to every customer created without a "
        "password, after the import completes (needs SMTP_HOST)",
    )


class CsvImportRequest(StrictInput):
    file_upload_id: DbId
    import_type: Literal["customers"] = "customers"
    mapping_config: dict[str, str] = Field(
        default_factory=dict,
        description='CSV column → customer field, e.g. {"name": "full_name"}; a field may '
        "also be named by an alias (name, zip, postcode, mobile, …), which the job's warnings "
        "mention",
        max_length=64,
    )
    validation_rules: ValidationRulesIn = Field(default_factory=ValidationRulesIn)

    @field_validator("mapping_config")
    @classmethod
    def _known_fields(cls, mapping: dict[str, str]) -> dict[str, str]:
        unknown = sorted({target for target in mapping.values() if fields.resolve(target) is None})
        if unknown:
            raise ValueError(
                f"unknown customer field(s) {', '.join(unknown)}; known: {fields.known_names()}"
            )
        return mapping
