"""Request and response bodies of `/auth` and `/users`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, EmailStr, Field

from filestore.auth.models import Role
from filestore.schemas import DbId, Schema, StrictInput

# Long enough for any passphrase (ASVS asks for at least 64), short enough that nobody makes
# the server hash megabytes. The rules themselves (length, common passwords) are checked by
# `auth.passwords` so that the answer says why.
PasswordStr = Annotated[str, Field(min_length=1, max_length=1024)]


class LoginRequest(StrictInput):
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Lifetime of the access token in seconds")


class RefreshRequest(StrictInput):
    refresh_token: str = Field(min_length=1, max_length=200)


class SetupRequest(StrictInput):
    username: str = Field(min_length=1, max_length=150)
    password: PasswordStr
    email: EmailStr | None = None
    full_name: str | None = Field(default=None, max_length=255)


class ChangePasswordRequest(StrictInput):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: PasswordStr


class ResetPasswordRequest(StrictInput):
    token: str = Field(min_length=1, max_length=200)
    new_password: PasswordStr


class PasswordResetOut(BaseModel):
    reset_token: str | None = Field(description="Null when the link was e-mailed to the user")
    reset_url: str | None = Field(description="Null when the link was e-mailed to the user")
    expires_at: datetime
    emailed: bool = Field(description="True when the link went to the user's e-mail instead")


class UserCreate(StrictInput):
    username: str = Field(min_length=1, max_length=150)
    password: PasswordStr
    role: Role = Role.customer
    customer_id: DbId | None = None
    email: str | None = Field(default=None, max_length=320)
    full_name: str | None = Field(default=None, max_length=255)


class UserUpdate(StrictInput):
    """Only the fields sent are changed; `customer_id: null` unlinks (non-customer roles)."""

    role: Role | None = None
    is_active: bool | None = None
    customer_id: DbId | None = None


class UserOut(Schema):
    id: int
    username: str
    email: str | None
    full_name: str | None
    role: Role
    customer_id: int | None
    is_active: bool
    password_reset_required: bool
    created_at: datetime
