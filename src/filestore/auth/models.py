"""The `users` table: staff, admins and customer logins."""

from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Identity, Index, String, func
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
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", values_callable=lambda e: [m.value for m in e])
    )
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    password_reset_required: Mapped[bool] = mapped_column(Boolean, server_default="false")
    token_version: Mapped[int] = mapped_column(server_default="0")

    __table_args__ = (
        Index("uq_users_email_lower", func.lower(email), unique=True),
    )
