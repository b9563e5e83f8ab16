"""Pydantic bases and field types shared by every domain's schemas and query parameters.

Whatever a client sends must be refused with a 422 when PostgreSQL could not store or compare
it, rather than fail in SQL with a 500: ids beyond BIGINT, text with NUL (U+0000) or with lone
surrogates (not UTF-8); so is text with other control characters. `StrictInput` checks every
text of a request body, dict keys included; `SearchText`, `DbId` and `PageOffset` do the same
for query and path parameters.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

MAX_DB_ID = 9_223_372_036_854_775_807
"""Largest PostgreSQL BIGINT: ids above it are refused with 422 rather than failing in SQL."""


# C0 controls but tab, line feed and carriage return; DEL; C1 controls. No name, e-mail,
# subject or password needs one, and an ESC in a stored name would drive a terminal that shows
# it (a log viewer, psql) or a spreadsheet cell built from an export.
_CONTROLS = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def storable_text(value: str) -> str:
    """`value` if PostgreSQL can store it as text and it has no control characters; a
    `ValueError` (a 422) otherwise."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (U+0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    control = _CONTROLS.search(value)
    if control is not None:
        raise ValueError(f"must not contain control characters (U+{ord(control[0]):04X})")
    return value


def _check_texts(value: Any) -> None:
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_texts(key)
            _check_texts(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_texts(item)


SearchText = Annotated[str, StringConstraints(max_length=320), AfterValidator(storable_text)]
"""A text filter of a listing (an e-mail, an action name) that PostgreSQL can compare."""

DbId = Annotated[int, Ge(1), Le(MAX_DB_ID)]
"""A row id: a positive BIGINT."""

PageOffset = Annotated[int, Ge(0), Le(MAX_DB_ID)]
"""How many rows a listing skips: at most a BIGINT."""


class Schema(BaseModel):
    """Base of every response body: built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class StrictInput(BaseModel):
    """Base of every request body: unknown fields (owner, checksums, status…) are refused, and
    so is any text PostgreSQL cannot store (`storable_text`), however deep in the body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_texts(cls, value: Any) -> Any:
        _check_texts(value)
        return value
