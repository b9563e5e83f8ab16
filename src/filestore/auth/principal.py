"""The caller of a read-only request as a plain value (`Principal`), and `Actor`: what the file
reads and audit events need of a user, which both `Principal` and the ORM `User` provide.

The hot read routes (`deps.ReadingUser`) load the token's user as one Core row mapped to a
frozen `Principal` instead of an ORM object: no identity map, no unit of work, no instance
state per request. Routes that change a user keep the ORM `User` (`deps.CurrentUser`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from filestore.auth.models import Role, User

# The columns a `Principal` is built from, in its field order (`UserOut` is a subset).
PRINCIPAL_COLUMNS = (
    User.id,
    User.username,
    User.email,
    User.full_name,
    User.role,
    User.customer_id,
    User.is_active,
    User.password_reset_required,
    User.created_at,
)


class Actor(Protocol):
    """Who acts, as far as visibility and the audit trail care."""

    @property
    def id(self) -> int: ...

    @property
    def role(self) -> Role: ...

    @property
    def customer_id(self) -> int | None: ...

    def may_see_customer(self, customer_id: int | None) -> bool: ...


def may_see_customer(actor: Actor, customer_id: int | None) -> bool:
    """Staff and admins see every customer's records; a customer only its own."""
    return actor.role is not Role.customer or actor.customer_id == customer_id


@dataclass(frozen=True, slots=True)
class Principal:
    """A user as the token check found it, at the start of this request."""

    id: int
    username: str
    email: str | None
    full_name: str | None
    role: Role
    customer_id: int | None
    is_active: bool
    password_reset_required: bool
    created_at: datetime

    def may_see_customer(self, customer_id: int | None) -> bool:
        return may_see_customer(self, customer_id)


@dataclass(frozen=True, slots=True)
class Caller:
    """The `Actor` of a request whose token check was joined to its read
    (`auth.service.caller`): no more of the user than visibility and the audit trail need."""

    id: int
    role: Role
    customer_id: int | None

    def may_see_customer(self, customer_id: int | None) -> bool:
        return may_see_customer(self, customer_id)
