"""Users: lookup, login, creation, first-run setup, administration. No HTTP here.

Whatever makes a user's existing credentials untrustworthy (a new password, a role, customer or
active-flag change) ends all of them at once: `credentials.end_all`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    bindparam,
    column,
    func,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from filestore.audit import service as audit
from filestore.audit.service import Action, Who
from filestore.auth import credentials, passwords, throttle
from filestore.auth import sessions as auth_sessions
from filestore.auth.models import Role, User
from filestore.auth.principal import PRINCIPAL_COLUMNS, Caller, Principal
from filestore.auth.schemas import SetupRequest, UserCreate, UserUpdate
from filestore.auth.security import AccessClaims, hash_password, verify_password
from filestore.db import side_transaction
from filestore.db_direct import DirectStatement
from filestore.errors import (
    Conflict,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from filestore.requests import NO_CLIENT, ClientInfo
from filestore.settings import Settings

INVALID_CREDENTIALS = "Incorrect username or password"
# Serialises first-run setup and changes that could leave no active admin.
_ADMIN_LOCK = 0x46_49_4C_45_41_44  # "FILEAD"


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_login(session: AsyncSession, login: str) -> User | None:
    """A user by username, or by e-mail (customer users log in with their e-mail)."""
    login = login.strip()
    stmt = (
        select(User)
        .where(or_(User.username == login, func.lower(User.email) == login.lower()))
        .order_by(User.username != login)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# Built once: each request only binds the values (no statement building, no cache key).
_TOKEN_CHECKS = (
    User.id == bindparam("user_id"),
    User.is_active.is_(True),
    User.token_version == bindparam("token_version"),
)
_TOKEN_USER = select(User).where(*_TOKEN_CHECKS)
_SESSION_TOKEN_USER = _TOKEN_USER.where(auth_sessions.is_live(bindparam("session_id")))
# The same checks, the user as a Core row (`principal_for_token`), run by `db_direct`.
_TOKEN_ROW = select(*PRINCIPAL_COLUMNS).where(*_TOKEN_CHECKS)
_SESSION_TOKEN_ROW = _TOKEN_ROW.where(auth_sessions.is_live(bindparam("session_id")))
_DIRECT_TOKEN_ROW = DirectStatement(_TOKEN_ROW)
_DIRECT_SESSION_TOKEN_ROW = DirectStatement(_SESSION_TOKEN_ROW)
_ROLE_AT = [column.key for column in PRINCIPAL_COLUMNS].index("role")


def token_params(claims: AccessClaims) -> dict[str, Any]:
    """What the token checks bind: `user_id`, `token_version` and, for a login's token,
    `session_id`."""
    params: dict[str, Any] = {"user_id": claims.user_id, "token_version": claims.token_version}
    if claims.session_id is not None:
        params["session_id"] = claims.session_id
    return params


CALLER_PREFIX = "caller_"


# The same checks, only what a `Caller` needs, for statements that join them (`caller`).
_CALLER = select(User.id, User.role, User.customer_id).where(*_TOKEN_CHECKS)
_SESSION_CALLER = _CALLER.where(auth_sessions.is_live(bindparam("session_id")))


@cache
def caller(*, with_session: bool) -> CTE:
    """The token's user as a common table expression (`caller`: id, role, customer id), with
    the same checks as `principal_for_token` (binds `token_params`): one row, or none when the
    token no longer speaks for anyone. For statements that check the token and read what the
    route reads in one round trip (`files.queries`); `caller_of` reads it back from their
    rows."""
    return (_SESSION_CALLER if with_session else _CALLER).cte("caller")


@cache
def caller_columns(*, with_session: bool) -> tuple[ColumnElement[Any], ...]:
    """What the joining statement returns of `caller`: a `Caller`'s columns, labelled
    `caller_<name>` so they do not clash with the columns of the rows they are joined to (and
    no more: psycopg describes every column of every result)."""
    return tuple(
        col.label(f"{CALLER_PREFIX}{col.name}") for col in caller(with_session=with_session).c
    )


def caller_of(row: Any) -> Caller | None:
    """The `Caller` of a row that starts with `caller_columns`; None when they are NULL (the
    statement found no caller)."""
    if row.caller_id is None:
        return None
    return Caller(row.caller_id, Role(row.caller_role), row.caller_customer_id)


def token_refused() -> Unauthorized:
    """The 401 for a valid token that no longer speaks for anyone (inactive user, another token
    version, a revoked or expired login session)."""
    return Unauthorized("Invalid token", code="invalid_token")


async def user_for_token(session: AsyncSession, claims: AccessClaims) -> User | None:
    """The user an access token still speaks for: active, same token version, and (for tokens
    issued at login) its session not revoked. One query, the session checked with the user."""
    params: dict[str, Any] = {"user_id": claims.user_id, "token_version": claims.token_version}
    stmt = _TOKEN_USER
    if claims.session_id is not None:
        stmt, params["session_id"] = _SESSION_TOKEN_USER, claims.session_id
    return (await session.execute(stmt, params)).scalar_one_or_none()


async def principal_for_token(
    connection: AsyncConnection, claims: AccessClaims
) -> Principal | None:
    """`user_for_token` as a plain value: the same one query and checks, the row read without
    the ORM (for the routes that only read)."""
    stmt = _DIRECT_SESSION_TOKEN_ROW if claims.session_id is not None else _DIRECT_TOKEN_ROW
    rows = await stmt.rows(connection, token_params(claims))
    if not rows:
        return None
    values = list(rows[0])
    values[_ROLE_AT] = Role(values[_ROLE_AT])  # the enum column comes as its string
    return Principal(*values)


async def login(
    session: AsyncSession, *, login: str, password: str, client: ClientInfo, settings: Settings
) -> auth_sessions.TokenPair:
    """Check the credentials (throttled per account and per client address) and start a
    session. Every failure is the same 401; an unknown name costs the same hashing."""
    # Look up in a short transaction of its own: no pooled connection may be held during the
    # ~30 ms of hashing, or a burst of logins would take them all and stall every request.
    async with side_transaction(session) as lookup:
        found = await get_by_login(lookup, login)
        keys = throttle.Keys(
            account=throttle.account_key(user_id=found.id if found else None, login=login),
            ip=throttle.ip_key(client.ip),
        )
        wait = await throttle.locked_for(lookup, keys)
    if wait is not None:
        raise TooManyRequests(
            "Too many failed logins; try again later", retry_after=wait, code="login_locked"
        )
    ok = await verify_password(password, found.password_hash if found else None)
    user = await session.get(User, found.id) if found is not None and ok else None
    if user is None or not user.is_active:
        reason = "unknown_user" if found is None else "inactive" if ok else "bad_password"
        who = Who(client, target_user_id=found.id if found else None)
        # Committed apart: the 401 below rolls the request's own transaction back.
        async with side_transaction(session) as side:
            locked = await throttle.record_failure(side, keys, settings)
            await audit.record(side, Action.login_failure, who, {"reason": reason})
            if locked is not None:
                await audit.record(side, Action.login_locked, who, {"seconds": locked})
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    await throttle.clear_account(session, keys)
    pair = await auth_sessions.start(session, user=user, client=client, settings=settings)
    await audit.record(session, Action.login_success, Who.own(user.id, client))
    return pair


# Accounts sit below customers (the customers package creates customer logins and decides
# visibility by user), so a user's customer is read by table name, as its foreign key names it.
_CUSTOMERS = table("customers", column("id"), column("email"))


async def _customer_email(session: AsyncSession, customer_id: int) -> str | None:
    """The e-mail of customer `customer_id`; 422 if there is no such customer."""
    stmt = select(_CUSTOMERS.c.email).where(_CUSTOMERS.c.id == customer_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise Unprocessable(f"Customer {customer_id} does not exist", code="customer_not_found")
    email: str | None = row.email
    return email


async def create(
    session: AsyncSession,
    *,
    user_in: UserCreate,
    actor_id: int | None = None,
    client: ClientInfo = NO_CLIENT,
    check_password: bool = True,
    password_reset_required: bool = False,
) -> User:
    """Create a user; a customer user is linked to an existing customer and gets its e-mail.

    `check_password=False` only for the embedded dev-mode bootstrap (`admin123`).
    """
    email = user_in.email
    if user_in.role is Role.customer:
        if user_in.customer_id is None:
            raise Unprocessable(
                "customer_id is required for a customer user", code="customer_required"
            )
        email = email or await _customer_email(session, user_in.customer_id)
    elif user_in.customer_id is not None:
        raise Unprocessable(
            "Only customer users are linked to a customer", code="customer_not_allowed"
        )
    if check_password:
        passwords.check(user_in.password, username=user_in.username, email=email)
    user = User(
        username=user_in.username,
        email=email,
        full_name=user_in.full_name,
        password_hash=await hash_password(user_in.password),
        role=user_in.role,
        customer_id=user_in.customer_id,
        password_reset_required=password_reset_required,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "A user with this username or e-mail already exists", code="user_exists"
        ) from exc
    await audit.record(
        session,
        Action.user_created,
        Who(client, actor_id=actor_id, target_user_id=user.id),
        {"role": user.role.value, "customer_id": user.customer_id},
    )
    return user


async def admin_exists(session: AsyncSession) -> bool:
    stmt = select(User.id).where(User.role == Role.admin).limit(1)
    return (await session.execute(stmt)).first() is not None


async def lock_admins(session: AsyncSession) -> None:
    """Serialise who creates or changes admins until the transaction ends (API processes that
    start together each bootstrap the first admin: one creates it, the others then see it)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADMIN_LOCK})


async def setup(session: AsyncSession, *, setup_in: SetupRequest, client: ClientInfo) -> User:
    """The first admin, only while there is none (409 afterwards, saying nothing more)."""
    await lock_admins(session)
    if await admin_exists(session):
        raise Conflict("This installation is already set up", code="setup_done")
    user = await create(
        session,
        user_in=UserCreate(
            username=setup_in.username,
            password=setup_in.password,
            role=Role.admin,
            email=setup_in.email,
            full_name=setup_in.full_name,
        ),
        client=client,
    )
    await audit.record(session, Action.setup_completed, Who(client, target_user_id=user.id))
    return user


async def list_users(
    session: AsyncSession,
    *,
    role: Role | None,
    customer_id: int | None,
    email: str | None,
    is_active: bool | None,
    limit: int,
    offset: int,
) -> list[User]:
    stmt = select(User).order_by(User.id).limit(limit).offset(offset)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if customer_id is not None:
        stmt = stmt.where(User.customer_id == customer_id)
    if email:
        stmt = stmt.where(func.lower(User.email) == email.strip().lower())
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    return list((await session.execute(stmt)).scalars())


async def get_or_404(session: AsyncSession, user_id: int, *, for_update: bool = False) -> User:
    user = await session.get(User, user_id, with_for_update=for_update)
    if user is None:
        raise NotFound(f"User {user_id} not found", code="user_not_found")
    return user


async def update(
    session: AsyncSession, *, user_id: int, changes: UserUpdate, actor_id: int, client: ClientInfo
) -> User:
    """Change role, activity or customer link. Any change ends every session, token and reset
    link the user had."""
    sent = changes.model_fields_set
    for name in ("role", "is_active"):
        if name in sent and getattr(changes, name) is None:
            raise Unprocessable(f"{name} cannot be null", code="validation_error")
    await lock_admins(session)
    user = await get_or_404(session, user_id, for_update=True)
    role = changes.role if changes.role is not None else user.role
    active = changes.is_active if changes.is_active is not None else user.is_active
    if role is Role.customer:
        customer_id = changes.customer_id if "customer_id" in sent else user.customer_id
        if customer_id is None:
            raise Unprocessable(
                "customer_id is required for a customer user", code="customer_required"
            )
        await _customer_email(session, customer_id)
    else:
        if changes.customer_id is not None:
            raise Unprocessable(
                "Only customer users are linked to a customer", code="customer_not_allowed"
            )
        customer_id = None
    if user.role is Role.admin and user.is_active and (role is not Role.admin or not active):
        others = (
            select(func.count())
            .select_from(User)
            .where(User.role == Role.admin, User.is_active.is_(True), User.id != user.id)
        )
        if not (await session.execute(others)).scalar_one():
            raise Conflict("This is the last active admin", code="last_admin")

    old_role, old_active, old_customer = user.role, user.is_active, user.customer_id
    user.role, user.is_active, user.customer_id = role, active, customer_id
    # (event, its details, why the user's credentials end: the first change's reason)
    events: list[tuple[Action, dict[str, Any] | None, str]] = []
    if old_role is not role:
        details = {"from": old_role.value, "to": role.value}
        events.append((Action.role_changed, details, "role_changed"))
    if old_active and not active:
        events.append((Action.user_deactivated, None, "deactivated"))
    elif active and not old_active:
        events.append((Action.user_reactivated, None, "reactivated"))
    if old_customer != customer_id:
        moved = {"customer_id": {"from": old_customer, "to": customer_id}}
        events.append((Action.user_updated, moved, "customer_changed"))
    who = Who(client, actor_id=actor_id, target_user_id=user.id)
    for action, event_details, _ in events:
        await audit.record(session, action, who, event_details)
    if events:
        # Any of these ends the user's tokens, sessions and reset links: a link issued for a
        # customer user must not work once that user is an admin.
        await credentials.end_all(session, user=user, reason=events[0][2])
    await session.flush()
    return user
