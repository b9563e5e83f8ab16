"""Accounts: `users`, their login sessions and refresh tokens, reset tokens, login throttling.

Secrets are never stored: refresh and reset tokens are kept as SHA-256 hashes (they are 256-bit
random strings, so a fast hash is enough), passwords as argon2id hashes.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from filestore.db import Base, TimestampMixin


class Role(enum.StrEnum):
    admin = "admin"
    staff = "staff"
    customer = "customer"


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", values_callable=lambda e: [m.value for m in e])
    )
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    password_reset_required: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Bumped on password change, deactivation and role change: every access token carries the
    # version it was issued under, so all of them die at once.
    token_version: Mapped[int] = mapped_column(server_default="0")

    __table_args__ = (Index("uq_users_email_lower", func.lower(email), unique=True),)

    def may_see_customer(self, customer_id: int | None) -> bool:
        """Staff and admins see every customer's records; a customer only its own."""
        return self.role is not Role.customer or self.customer_id == customer_id


class AuthSession(Base):
    """One login: the family of refresh tokens rotated from it. Revoking it ends them all, and
    the access tokens issued in it (they carry its id as `sid`)."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class RefreshToken(Base):
    """A refresh token (its hash). `used_at` is set when it is rotated: presenting it again is
    reuse, and revokes its session."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PasswordResetToken(Base):
    """At most one live reset token per user: issuing a new one replaces the previous."""

    __tablename__ = "password_reset_tokens"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(BigInteger)


class LoginThrottle(Base):
    """Failed-login counters, shared by every API process: `user:<id>`, `login:<sha256 of an
    unknown login name>` or `ip:<address or IPv6 /64>`."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    window_started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    locked_until: Mapped[datetime | None]
    lockouts: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
