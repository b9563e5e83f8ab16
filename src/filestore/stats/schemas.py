"""The body of `GET /stats/overview`."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class BucketUsage(BaseModel):
    bucket: str
    bytes: int = Field(description="Bytes of live files (same figure as filestore_storage_bytes)")
    files: int


class CustomerUsage(BaseModel):
    customer_id: int
    full_name: str
    bytes: int = Field(description="Bytes of the live files uploaded in the window")
    files: int


class UploadDay(BaseModel):
    day: date
    completed: int = Field(description="Uploads accepted that day (also those since deleted)")
    rejected: int
    bytes: int = Field(description="Bytes of the uploads accepted that day")
    rejected_by_reason: dict[str, int] = Field(
        description="size, type, virus, checksum, missing (only reasons that occurred)"
    )


class ImportDay(BaseModel):
    day: date
    imports: int
    failed: int = Field(description="Imports that failed or were cancelled")
    rows_imported: int
    rows_failed: int
    rows_skipped: int
    average_seconds: float | None = Field(description="Mean run time of the finished ones")
    longest_seconds: float | None


class Overview(BaseModel):
    since: datetime = Field(description="Start of the window (UTC midnight)")
    days: int
    storage: list[BucketUsage]
    top_customers: list[CustomerUsage]
    uploads: list[UploadDay] = Field(description="One entry per day of the window, oldest first")
    imports: list[ImportDay] = Field(description="One entry per day of the window, oldest first")
