"""FastAPI dependencies shared by the routers: state, DB session, current user, roles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth import cookies as auth_cookies
from filestore.auth import service as auth_service
from filestore.auth.models import Role, User
from filestore.auth.security import decode_access_claims
from filestore.db import session_scope
from filestore.errors import Forbidden, Unauthorized
from filestore.requests import ClientInfo, client_of
from filestore.schemas import DbId
from filestore.settings import Settings
from filestore.state import AppState
from filestore.storage.store import ObjectStorage

IdPath = Annotated[DbId, Path()]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login", auto_error=False)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.filestore
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


def get_storage(state: StateDep) -> ObjectStorage:
    return state.storage


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StorageDep = Annotated[ObjectStorage, Depends(get_storage)]


ClientDep = Annotated[ClientInfo, Depends(client_of)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(state.sessionmaker):
        yield session


# scope="function": commit (or roll back) when the handler returns, before the response is
# sent, so a failed commit becomes an error response instead of a lie.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_current_user(
    request: Request, state: StateDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    """The token's user, loaded in a short session of its own: a long upload must not hold a
    database connection while its bytes arrive. The bearer header wins; without one, the
    console's cookie counts, if a state-changing request passes the CSRF check."""
    if not token:
        token = auth_cookies.access_token(request)
    if not token:
        raise Unauthorized()
    claims = decode_access_claims(token, secret=state.settings.jwt_secret_key)
    async with state.sessionmaker() as session:
        user = await auth_service.user_for_token(session, claims)
    if user is None:
        raise Unauthorized("Invalid token", code="invalid_token")
    structlog.contextvars.bind_contextvars(user_id=user.id)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[User], Coroutine[Any, Any, User]]:
    """A dependency that lets only users with one of `roles` through (403 otherwise)."""

    async def dependency(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden("Your role may not do this", code="forbidden_role")
        return user

    return dependency


StaffUser = Annotated[User, Depends(require_roles(Role.admin, Role.staff))]
AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
