"""Users: authentication, creation and lookup. No HTTP here."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth.models import Role, User
from filestore.auth.schemas import UserCreate
from filestore.auth.security import hash_password, verify_password
from filestore.customers import service as customers_service
from filestore.errors import Conflict, Unauthorized, Unprocessable

INVALID_CREDENTIALS = "Incorrect username or password"


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_login(session: AsyncSession, login: str) -> User | None:
    """A user by username, or by e-mail (customer users log in with their e-mail)."""
    login = login.strip()
    stmt = select(User).where(
        or_(User.username == login, func.lower(User.email) == login.lower())
    ).order_by(User.username != login).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def authenticate(session: AsyncSession, *, username: str, password: str) -> User:
    """The active user with these credentials; the same 401 for every kind of failure."""
    user = await get_by_login(session, username)
    ok = await verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    return user


async def create(session: AsyncSession, *, user_in: UserCreate) -> User:
    """Create a user; a customer user is linked to an existing customer and gets its e-mail."""
    email = user_in.email
    if user_in.role is Role.customer:
        if user_in.customer_id is None:
            raise Unprocessable("customer_id is required for a customer user", code="customer_required")
        customer = await customers_service.get(session, user_in.customer_id)
        if customer is None:
            raise Unprocessable(f"Customer {user_in.customer_id} does not exist", code="customer_not_found")
        email = email or customer.email
    elif user_in.customer_id is not None:
        raise Unprocessable("Only customer users are linked to a customer", code="customer_not_allowed")
    user = User(
        username=user_in.username,
        email=email,
        password_hash=await hash_password(user_in.password),
        role=user_in.role,
        customer_id=user_in.customer_id,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("A user with this username or e-mail already exists", code="user_exists") from exc
    return user


async def admin_exists(session: AsyncSession) -> bool:
    stmt = select(User.id).where(User.role == Role.admin).limit(1)
    return (await session.execute(stmt)).first() is not None
