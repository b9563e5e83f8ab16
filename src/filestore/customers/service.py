"""Customers: create, fetch, list. Who may see which customer is decided here too."""

from __future__ import annotations

from sqlalchemy import BigInteger, Select, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth import passwords
from filestore.auth import service as auth_service
from filestore.auth.models import Role, User
from filestore.auth.schemas import UserCreate
from filestore.customers.models import Customer
from filestore.customers.schemas import CustomerCreate
from filestore.errors import Conflict, NotFound
from filestore.requests import NO_CLIENT, ClientInfo


async def get(session: AsyncSession, customer_id: int) -> Customer | None:
    return await session.get(Customer, customer_id)


async def get_visible(session: AsyncSession, *, customer_id: int, user: User) -> Customer:
    """The customer if `user` may see it; 404 otherwise (never reveal that it exists)."""
    customer = await get(session, customer_id)
    if customer is None or not user.may_see_customer(customer.id):
        raise NotFound(f"Customer {customer_id} not found", code="customer_not_found")
    return customer


def visible_id_query(role: Role) -> Select[int]:
    """The id of customer `:owner_id` if a user of `role` may see it (a customer user: only
    `:user_customer_id`), else no row: the rule of `get_visible` as a statement built once per
    role, for queries that join it (`files.queries`)."""
    stmt = select(Customer.id).where(Customer.id == bindparam("owner_id", type_=BigInteger))
    if role is Role.customer:
        stmt = stmt.where(Customer.id == bindparam("user_customer_id", type_=BigInteger))
    return stmt


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
