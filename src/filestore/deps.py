"""FastAPI dependencies shared by the routers: state, DB session, current user, roles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from filestore.auth import cookies as auth_cookies
from filestore.auth import service as auth_service
from filestore.auth.models import Role, User
from filestore.auth.principal import Actor, Principal
from filestore.auth.security import AccessClaims, decode_access_claims
from filestore.db import session_scope
from filestore.errors import Forbidden, Unauthorized
from filestore.requests import ClientInfo, client_of
from filestore.schemas import DbId
from filestore.settings import Settings
from filestore.state import AppState
from filestore.storage.store import ObjectStorage

IdPath = Annotated[DbId, Path()]
ActorT = TypeVar("ActorT", bound=Actor)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


# The dependencies below are `async def` although they never await: FastAPI runs a plain
# `def` dependency in a worker thread, a thread hop per dependency per request.


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.filestore
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


async def get_storage(state: StateDep) -> ObjectStorage:
    return state.storage


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StorageDep = Annotated[ObjectStorage, Depends(get_storage)]


async def get_client(request: Request) -> ClientInfo:
    return client_of(request)


ClientDep = Annotated[ClientInfo, Depends(get_client)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    # `async with aclosing`, not a bare `async for`: when the handler raises, the exception is
    # thrown in here and the inner generator must roll back now, not when the garbage
    # collector finalises it (in another task, after the next request may have started).
    async with aclosing(session_scope(state.sessionmaker)) as sessions:
        async for session in sessions:
            yield session


# scope="function": commit (or roll back) when the handler returns, before the response is
# sent, so a failed commit becomes an error response instead of a lie.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.reader() as session:
        yield session


# For routes that only read (GET): no transaction, so no BEGIN and COMMIT round trips.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def get_access_token(
    request: Request, bearer: Annotated[str | None, Depends(oauth2_scheme)]
) -> str | None:
    """The bearer header wins; without one, the console's cookie counts, if a state-changing
    request passes the CSRF check."""
    return bearer or auth_cookies.access_token(request)


TokenDep = Annotated[str | None, Depends(get_access_token)]


def _claims(state: AppState, token: str | None) -> AccessClaims:
    if not token:
        raise Unauthorized()
    return decode_access_claims(token, secret=state.settings.jwt_secret_key)


async def _checked(session: AsyncSession, claims: AccessClaims) -> User:
    user = await auth_service.user_for_token(session, claims)
    if user is None:
        raise Unauthorized("Invalid token", code="invalid_token")
    structlog.contextvars.bind_contextvars(user_id=user.id)
    return user


async def get_current_user(state: StateDep, session: SessionDep, token: TokenDep) -> User:
    """The token's user, loaded in the request's own session and transaction: one checkout
    and one query (user and login session together) per request."""
    return await _checked(session, _claims(state, token))


async def get_reading_user(state: StateDep, session: ReadSessionDep, token: TokenDep) -> Principal:
    """The token's user, for routes that only read: the same checks in the request's read
    session, the user a plain `Principal` (a Core row, no ORM object)."""
    claims = _claims(state, token)
    principal = await auth_service.principal_for_token(await session.connection(), claims)
    if principal is None:
        raise Unauthorized("Invalid token", code="invalid_token")
    structlog.contextvars.bind_contextvars(user_id=principal.id)
    return principal


async def get_standalone_user(state: StateDep, token: TokenDep) -> User:
    """The token's user, loaded in a short session of its own: for the routes that must not
    hold a database connection while they run (uploads, whose bytes arrive slowly; password
    hashing) or that open sessions of their own."""
    claims = _claims(state, token)
    async with state.reader() as session:
        return await _checked(session, claims)


@dataclass(slots=True)
class Reading:
    """A read-only request's state, connection (autocommit, no ORM session) and verified
    token claims, from one
    dependency (`ReadingDep`): each `Depends` layer costs FastAPI's dependency solving a
    little on every request, and the hot reads (`GET /files/{id}`, the listings, downloads,
    `/auth/me`) are mostly that and their one round trip. Whether the token still speaks for
    anyone is left to the route's statement (`files.queries.caller_*`,
    `auth.service.principal_for_token`), which checks it with what it reads."""

    request: Request
    state: AppState
    connection: AsyncConnection
    claims: AccessClaims

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def base_url(self) -> str:
        """The base of the links the API hands out, with no trailing slash."""
        return (self.state.settings.public_base_url or str(self.request.base_url)).rstrip("/")

    def client(self) -> ClientInfo:
        return client_of(self.request)

    @staticmethod
    def acting(user: ActorT) -> ActorT:
        """`user`, once its id is on the request's log line."""
        structlog.contextvars.bind_contextvars(user_id=user.id)
        return user


async def get_reading(
    request: Request, bearer: Annotated[str | None, Depends(oauth2_scheme)]
) -> AsyncIterator[Reading]:
    state: AppState = request.app.state.filestore
    # The token's signature and claims first: a bad token is refused without a connection.
    claims = _claims(state, bearer or auth_cookies.access_token(request))
    async with state.read_connection() as connection:
        yield Reading(request, state, connection, claims)


# No transaction, as ReadSessionDep.
ReadingDep = Annotated[Reading, Depends(get_reading, scope="function")]


async def get_standalone_principal(
    request: Request, bearer: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """`get_standalone_user` as a plain `Principal` (a Core row, no ORM object): for the form
    upload, which only reads the user (4 KiB uploads: issue 12). The state and the token are
    read here, as `get_reading` does, rather than through two more `Depends` layers."""
    state: AppState = request.app.state.filestore
    claims = _claims(state, bearer or auth_cookies.access_token(request))
    async with state.read_connection() as connection:
        principal = await auth_service.principal_for_token(connection, claims)
    if principal is None:
        raise Unauthorized("Invalid token", code="invalid_token")
    structlog.contextvars.bind_contextvars(user_id=principal.id)
    return principal


CurrentUser = Annotated[User, Depends(get_current_user)]
StandaloneUser = Annotated[User, Depends(get_standalone_user)]
StandalonePrincipal = Annotated[Principal, Depends(get_standalone_principal)]
ReadingUser = Annotated[Principal, Depends(get_reading_user)]


def require_roles(*roles: Role) -> Callable[[User], Coroutine[Any, Any, User]]:
    """A dependency that lets only users with one of `roles` through (403 otherwise)."""

    async def dependency(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden("Your role may not do this", code="forbidden_role")
        return user

    return dependency


StaffUser = Annotated[User, Depends(require_roles(Role.admin, Role.staff))]
AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
