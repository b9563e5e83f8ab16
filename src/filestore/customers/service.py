"""Customers: create, fetch, list, and their logins. Who may see which customer is decided
here too.

A customer's login (a `users` row with role customer) exists when it has a password (given at
`POST /customers` or in an import's password column) or was invited by an import; otherwise
it is created the first time a reset link is asked for (`ensure_login`): until someone chooses
a password there is nothing such a row could be used for."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.audit import service as audit
from filestore.audit.service import Action, Who
from filestore.auth import passwords
from filestore.auth import service as auth_service
from filestore.auth.models import Role, User
from filestore.auth.principal import Actor
from filestore.auth.schemas import UserCreate
from filestore.customers.models import Customer
from filestore.customers.schemas import CustomerCreate
from filestore.errors import Conflict, NotFound
from filestore.requests import NO_CLIENT, ClientInfo


async def get(session: AsyncSession, customer_id: int) -> Customer | None:
    return await session.get(Customer, customer_id)


async def get_visible(session: AsyncSession, *, customer_id: int, user: Actor) -> Customer:
    """The customer if `user` may see it; 404 otherwise (never reveal that it exists)."""
    customer = await get(session, customer_id)
    if customer is None or not user.may_see_customer(customer.id):
        raise NotFound(f"Customer {customer_id} not found", code="customer_not_found")
    return customer


def visible_id_to(role: ColumnElement[Any], customer_id: ColumnElement[Any]) -> Select[int]:
    """The id of customer `:owner_id` if the caller may see it, else no row: the rule of
    `get_visible` as a statement, for a caller known only inside the statement that joins it
    (the `role` and `customer_id` columns of the token's user row, `files.queries`)."""
    return select(Customer.id).where(
        Customer.id == bindparam("owner_id", type_=BigInteger),
        or_(role != Role.customer, Customer.id == customer_id),
    )


async def get_by_email(session: AsyncSession, email: str) -> Customer | None:
    stmt = select(Customer).where(func.lower(Customer.email) == email.strip().lower())
    return (await session.execute(stmt)).scalar_one_or_none()


async def create(
    session: AsyncSession,
    *,
    customer_in: CustomerCreate,
    actor_id: int | None = None,
    client: ClientInfo = NO_CLIENT,
) -> Customer:
    """Create a customer; with a password, its customer user too (both or neither)."""
    if customer_in.password is not None:
        # Before anything is written, so a weak password leaves nothing behind.
        passwords.check(customer_in.password, username=customer_in.email, email=customer_in.email)
    customer = Customer(**customer_in.model_dump(exclude={"password"}))
    session.add(customer)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"A customer with e-mail {customer_in.email} already exists", code="customer_exists"
        ) from exc
    if customer_in.password is not None:
        await auth_service.create(
            session,
            user_in=UserCreate(
                username=customer.email,
                password=customer_in.password,
                role=Role.customer,
                customer_id=customer.id,
                email=customer.email,
                full_name=customer.full_name,
            ),
            actor_id=actor_id,
            client=client,
        )
    return customer


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_visible(
    session: AsyncSession,
    *,
    user: User,
    email: str | None,
    limit: int,
    offset: int,
    q: str | None = None,
) -> list[Customer]:
    """Customers `user` may see; `email` matches exactly, `q` any part of the name or e-mail
    (case-insensitive; the console's type-ahead)."""
    stmt = select(Customer).limit(limit).offset(offset)
    if user.role is Role.customer:
        stmt = stmt.where(Customer.id == user.customer_id)
    if email:
        stmt = stmt.where(func.lower(Customer.email) == email.strip().lower())
    if q and q.strip():
        pattern = _contains(q.strip())
        stmt = stmt.where(
            Customer.full_name.ilike(pattern, escape="\\")
            | Customer.email.ilike(pattern, escape="\\")
        ).order_by(func.lower(Customer.full_name), Customer.id)
    else:
        stmt = stmt.order_by(Customer.id)
    return list((await session.execute(stmt)).scalars())


# `users.username` holds 150 characters, an e-mail up to 320: a longer e-mail's login is
# named after the customer (customers log in with their e-mail anyway). As the import does.
_USERNAME_MAX = 150


async def ensure_login(
    session: AsyncSession, *, customer: Customer, actor_id: int | None, client: ClientInfo
) -> User:
    """The customer's login; created now, with no usable password and a reset required, if
    it has none. 409 when its e-mail is already another user's login (an e-mail is one
    account's only)."""
    stmt = (
        select(User)
        .where(User.customer_id == customer.id, User.role == Role.customer)
        .order_by(User.id)
        .limit(1)
    )
    existing = (await session.execute(stmt)).scalar_one_or_none()
    if existing is not None:
        return existing
    username = customer.email if len(customer.email) <= _USERNAME_MAX else f"customer-{customer.id}"
    created = (
        await session.execute(
            insert(User)
            .values(
                username=username,
                email=customer.email,
                full_name=customer.full_name,
                # Not a hash of anything: `security.is_usable` refuses it for every password.
                password_hash=f"!unusable:{uuid.uuid4()}",
                role=Role.customer,
                customer_id=customer.id,
                password_reset_required=True,
            )
            .on_conflict_do_nothing()
            .returning(User.id)
        )
    ).scalar_one_or_none()
    if created is None:
        # Another request created it meanwhile (it waited for that one to commit), or the
        # e-mail or username belongs to someone else.
        existing = (await session.execute(stmt)).scalar_one_or_none()
        if existing is not None:
            return existing
        raise Conflict(
            f"Another user's login already uses {customer.email}; "
            "change that user's e-mail or link it to this customer",
            code="email_in_use",
        )
    await audit.record(
        session,
        Action.user_created,
        Who(client, actor_id=actor_id, target_user_id=created),
        {"role": Role.customer.value, "customer_id": customer.id, "on_demand": True},
    )
    user = await session.get(User, created)
    assert user is not None
    return user
