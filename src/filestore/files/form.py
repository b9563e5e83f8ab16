"""The form fields of an upload: parsed and checked as they arrive, before any lookup.

Checks that need the user or the database (backups are admin-only, the customer and the
ticket exist and are visible) are made by the upload pipeline right after `parse`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from filestore.auth.models import Role
from filestore.auth.principal import Actor
from filestore.errors import Unprocessable
from filestore.schemas import MAX_DB_ID

SERVER_OWNED_FIELDS = {
    "id",
    "md5",
    "sha256",
    "file_size",
    "size",
    "mime_type",
    "upload_status",
    "status",
    "bucket",
    "object_key",
    "uploaded_by",
    "owner",
    "url",
    "created_at",
    "deleted_at",
    "filename",
}
FILE_TYPE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MAX_EXPIRY = timedelta(days=100 * 365)
MAX_METADATA_DEPTH = 64
# PostgreSQL text and jsonb hold neither NUL nor a surrogate code point (valid UTF-8 has none).
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


@dataclass
class UploadFields:
    """The form fields, parsed and checked as they arrive."""

    file_type: str = "document"
    customer_id: int | None = None
    ticket_id: int | None = None
    ticket_customer_id: int | None = None
    service_id: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    checksum_sha256: str | None = None
    seen: set[str] = field(default_factory=set)

    def owner_customer_id(self, user: Actor) -> int | None:
        """The customer the file belongs to: given, else the ticket's, else the uploader's."""
        if self.customer_id is not None:
            return self.customer_id
        if self.ticket_customer_id is not None:
            return self.ticket_customer_id
        return user.customer_id if user.role is Role.customer else None

    def parse(self, name: str, value: str, *, now: datetime) -> bool:
        """Store field `name`; False when it was sent empty (ignored). 422 for a bad value,
        a field sent twice, an unknown field or one the server owns."""
        if name in self.seen:
            raise Unprocessable(f"Form field {name!r} is given twice", code="duplicate_field")
        self.seen.add(name)
        if name in SERVER_OWNED_FIELDS:
            raise Unprocessable(f"{name} is set by the server", code="server_owned_field")
        if value.strip() == "" and name != "metadata":
            return False
        if name == "file_type":
            file_type = value.strip().lower()
            if not FILE_TYPE_PATTERN.match(file_type):
                raise Unprocessable(
                    "file_type must be a short lower-case word (csv, image, document, …)",
                    code="invalid_field",
                )
            self.file_type = file_type
        elif name == "customer_id":
            self.customer_id = parse_id(name, value)
        elif name == "ticket_id":
            self.ticket_id = parse_id(name, value)
        elif name == "service_id":
            self.service_id = parse_id(name, value)
        elif name == "metadata":
            self.metadata = parse_metadata(value)
        elif name == "expires_at":
            self.expires_at = parse_future_datetime(name, value, now)
        elif name == "checksum_sha256":
            checksum = value.strip().lower()
            if not SHA256_PATTERN.match(checksum):
                raise Unprocessable("checksum_sha256 must be 64 hex digits", code="invalid_field")
            self.checksum_sha256 = checksum
        else:
            raise Unprocessable(f"Unknown form field {name!r}", code="unknown_field")
        return True


def parse_id(name: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError as exc:
        raise Unprocessable(f"{name} must be a whole number", code="invalid_field") from exc
    if not 1 <= number <= MAX_DB_ID:
        raise Unprocessable(f"{name} is out of range", code="invalid_field")
    return number


def parse_future_datetime(name: str, value: str, now: datetime) -> datetime:
    """An ISO 8601 date-time (UTC when it has no offset) in the future, and not more than
    100 years ahead: later dates mean "never", and past year 9999 they cannot be read back."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise Unprocessable(f"{name} must be an ISO 8601 date-time", code="invalid_field") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed <= now:
        raise Unprocessable(f"{name} must be in the future", code="invalid_field")
    if parsed > now + MAX_EXPIRY:
        raise Unprocessable(
            f"{name} must be at most 100 years ahead (leave it out for a file that never expires)",
            code="invalid_field",
        )
    return parsed


def parse_metadata(value: str) -> dict[str, Any]:
    """A JSON object that PostgreSQL's jsonb can store and any client can read back."""
    if not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except RecursionError as exc:
        raise _metadata_too_deep() from exc
    except ValueError as exc:
        raise Unprocessable("metadata must be a JSON object", code="invalid_metadata") from exc
    if not isinstance(parsed, dict):
        raise Unprocessable("metadata must be a JSON object", code="invalid_metadata")
    _check_storable(parsed, depth=1)
    return parsed


def _check_storable(value: Any, *, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth > MAX_METADATA_DEPTH:
            raise _metadata_too_deep()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _check_text(key)
            _check_storable(item, depth=depth + 1)
    elif isinstance(value, str):
        _check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise Unprocessable(
            "metadata numbers must be finite: no NaN, Infinity or values beyond ±1.7e308",
            code="invalid_metadata",
        )


def _check_text(text: str) -> None:
    if _UNSTORABLE_TEXT.search(text):
        raise Unprocessable(
            "metadata text cannot hold NUL (\\u0000) or unpaired surrogates (\\ud800-\\udfff)",
            code="invalid_metadata",
        )


def _metadata_too_deep() -> Unprocessable:
    return Unprocessable(
        f"metadata nests deeper than {MAX_METADATA_DEPTH} levels", code="invalid_metadata"
    )
