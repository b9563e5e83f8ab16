"""Request and response bodies of `/customers`."""

from __future__ import annotations

from datetime import datetime

from pydantic import EmailStr, Field

from filestore.schemas import Schema, StrictInput


class CustomerCreate(StrictInput):
    full_name: str = Field(min_length=1, max_length=255)
    email: EmailStr
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=500)
    city: str | None = Field(default=None, max_length=120)
    state: str | None = Field(default=None, max_length=120)
    postal_code: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, max_length=120)
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Optional: also create the customer's login (username and login = the e-mail)",
    )


class CustomerOut(Schema):
    id: int
    full_name: str
    email: str
    phone: str | None
    address: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None
    created_at: datetime
    updated_at: datetime
