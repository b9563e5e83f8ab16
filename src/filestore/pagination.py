"""Keyset pagination: an opaque cursor naming the last row of a page (its `created_at` and `id`).

A listing ordered newest first continues strictly after that row, so page 1000 costs what page
1 costs (the index is entered at the cursor instead of skipping `offset` rows), and rows added
meanwhile never shift a page. The cursor is URL-safe base64 of `<created_at ISO>|<id>`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from filestore.errors import Unprocessable
from filestore.schemas import MAX_DB_ID

# Response header carrying the cursor of the next page (absent on the last page).
NEXT_CURSOR_HEADER = "X-Next-Cursor"
CURSOR_MAX_LENGTH = 128


@dataclass(frozen=True)
class Keyset:
    """The last row a page ended with."""

    created_at: datetime
    id: int


def encode(created_at: datetime, row_id: int) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Keyset:
    """The row a cursor names; 422 `invalid_cursor` for anything `encode` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, row_id = raw.partition("|")
        created_at = datetime.fromisoformat(stamp)
        key = Keyset(created_at=created_at, id=int(row_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        key = None
    if key is None or key.created_at.tzinfo is None or not 0 <= key.id <= MAX_DB_ID:
        raise Unprocessable("cursor is not one this API returned", code="invalid_cursor")
    return key
