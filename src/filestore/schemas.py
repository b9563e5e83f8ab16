"""Pydantic bases shared by every domain's schemas."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """Base of every response body: built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class StrictInput(BaseModel):
    """Base of every request body: unknown fields (owner, checksums, status…) are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


MAX_DB_ID = 9_223_372_036_854_775_807
"""Largest PostgreSQL BIGINT: ids above it are refused with 422 rather than failing in SQL."""
