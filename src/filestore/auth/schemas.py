"""Request and response bodies of `/auth` and `/users`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from filestore.auth.models import Role
from filestore.schemas import Schema, StrictInput


class LoginRequest(StrictInput):
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Lifetime of the access token in seconds")


class UserCreate(StrictInput):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=8, max_length=1024)
    role: Role = Role.customer
    customer_id: int | None = None
    email: str | None = Field(default=None, max_length=320)


class UserOut(Schema):
    id: int
    username: str
    email: str | None
    role: Role
    customer_id: int | None
    is_active: bool
    password_reset_required: bool
    created_at: datetime
