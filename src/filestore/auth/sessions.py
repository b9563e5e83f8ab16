"""Login sessions and their refresh tokens (OAuth 2.0 Security BCP: rotation + reuse detection).

A login starts a session (the token *family*). Each refresh token is an opaque 256-bit string
kept only as its SHA-256. `/auth/refresh` marks the presented token used with ONE conditional
statement (`UPDATE … WHERE used_at IS NULL … RETURNING`), so of any number of concurrent
refreshes with the same token exactly one wins, and issues the next token of the family.
Presenting a token that was already rotated is reuse: the thief or the victim holds a copy, so
the whole session is revoked, its newer tokens and its access tokens (they carry the session id
as `sid`) included. Revocation must survive the refused request, so it commits on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import BindParameter, ColumnElement, exists, func, text
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.audit import service as audit
from filestore.audit.service import Action, Who
from filestore.auth.models import AuthSession, RefreshToken, User
from filestore.auth.security import create_access_token, new_opaque_token, token_digest
from filestore.db import side_transaction
from filestore.errors import Unauthorized
from filestore.requests import ClientInfo
from filestore.settings import Settings

INVALID_REFRESH = "Invalid or expired refresh token"

_ROTATE = text(
    """
    UPDATE refresh_tokens AS rt SET used_at = now()
    FROM auth_sessions AS s
    WHERE rt.token_hash = :digest AND rt.used_at IS NULL AND rt.expires_at > now()
      AND s.id = rt.session_id AND s.revoked_at IS NULL AND s.expires_at > now()
    RETURNING rt.session_id, s.user_id, s.token_version, s.expires_at
    """
)

_FIND = text("SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = :digest")

_REVOKE = text(
    """
    UPDATE auth_sessions SET revoked_at = now(), revoked_reason = :reason
    WHERE id = :session_id AND revoked_at IS NULL
    RETURNING user_id
    """
)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def _access(settings: Settings, *, user_id: int, token_version: int, session_id: uuid.UUID) -> str:
    return create_access_token(
        user_id=user_id,
        token_version=token_version,
        secret=settings.jwt_secret_key,
        expires_minutes=settings.access_token_expire_minutes,
        session_id=session_id,
    )


async def _new_refresh(
    session: AsyncSession,
    *,
    session_id: uuid.UUID,
    session_expires_at: datetime,
    settings: Settings,
) -> str:
    token = new_opaque_token()
    expires = min(
        datetime.now(UTC) + timedelta(days=settings.refresh_token_expire_days), session_expires_at
    )
    session.add(
        RefreshToken(session_id=session_id, token_hash=token_digest(token), expires_at=expires)
    )
    await session.flush()
    return token


async def start(
    session: AsyncSession, *, user: User, client: ClientInfo, settings: Settings
) -> TokenPair:
    """A new session for a user who just proved who they are."""
    # Housekeeping: this user's ended sessions (their tokens go with them, ON DELETE CASCADE).
    await session.execute(
        text(
            "DELETE FROM auth_sessions WHERE user_id = :user_id "
            "AND (expires_at < now() OR revoked_at < now() - interval '1 day')"
        ),
        {"user_id": user.id},
    )
    now = datetime.now(UTC)
    auth = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        token_version=user.token_version,
        expires_at=now + timedelta(days=settings.session_max_age_days),
        client_ip=client.ip,
        user_agent=(client.user_agent or None) and client.user_agent[:300],
    )
    session.add(auth)
    await session.flush()
    refresh = await _new_refresh(
        session, session_id=auth.id, session_expires_at=auth.expires_at, settings=settings
    )
    return TokenPair(
        access_token=_access(
            settings, user_id=user.id, token_version=user.token_version, session_id=auth.id
        ),
        refresh_token=refresh,
        expires_in=settings.access_token_expire_minutes * 60,
    )


async def revoke(session: AsyncSession, *, session_id: uuid.UUID, reason: str) -> int | None:
    """Revoke one session; its user's id when it was live until now."""
    row = (await session.execute(_REVOKE, {"session_id": session_id, "reason": reason})).first()
    return None if row is None else int(row[0])


async def revoke_all(session: AsyncSession, *, user_id: int, reason: str) -> None:
    await session.execute(
        text(
            "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = :reason "
            "WHERE user_id = :user_id AND revoked_at IS NULL"
        ),
        {"user_id": user_id, "reason": reason},
    )


def is_live(session_id: uuid.UUID | BindParameter[uuid.UUID]) -> ColumnElement[bool]:
    """True in a query on `users` when that user's session `session_id` is live (not revoked,
    not expired): checked together with the user, in one query per request."""
    return exists().where(
        AuthSession.id == session_id,
        AuthSession.user_id == User.id,
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > func.now(),
    )


async def refresh(
    session: AsyncSession, *, refresh_token: str, client: ClientInfo, settings: Settings
) -> TokenPair:
    """Rotate: the presented token is spent, the next one of its family is returned."""
    digest = token_digest(refresh_token)
    row = (await session.execute(_ROTATE, {"digest": digest})).first()
    if row is None:
        await _refused(session, digest=digest, client=client)
    session_id, user_id, token_version, session_expires_at = row
    user = await session.get(User, user_id)
    if user is None or not user.is_active or user.token_version != token_version:
        async with side_transaction(session) as side:
            await revoke(side, session_id=session_id, reason="stale")
        raise Unauthorized(INVALID_REFRESH, code="invalid_refresh_token")
    # Spent tokens are kept while they could still be replayed (for reuse detection), no longer.
    await session.execute(
        text("DELETE FROM refresh_tokens WHERE session_id = :id AND expires_at < now()"),
        {"id": session_id},
    )
    new_refresh = await _new_refresh(
        session, session_id=session_id, session_expires_at=session_expires_at, settings=settings
    )
    return TokenPair(
        access_token=_access(
            settings, user_id=user.id, token_version=user.token_version, session_id=session_id
        ),
        refresh_token=new_refresh,
        expires_in=settings.access_token_expire_minutes * 60,
    )


async def _refused(session: AsyncSession, *, digest: str, client: ClientInfo) -> NoReturn:
    """Why a refresh failed does not matter to the client (always 401); a spent token is reuse
    and ends its whole session."""
    found = (await session.execute(_FIND, {"digest": digest})).first()
    if found is not None and found.used_at is not None:
        async with side_transaction(session) as side:
            user_id = await revoke(side, session_id=found.session_id, reason="reuse")
            if user_id is not None:
                await audit.record(
                    side,
                    Action.refresh_reuse_detected,
                    Who(client, target_user_id=user_id),
                    {"session_id": str(found.session_id)},
                )
    raise Unauthorized(INVALID_REFRESH, code="invalid_refresh_token")


async def logout(session: AsyncSession, *, refresh_token: str, client: ClientInfo) -> None:
    """End the session this refresh token belongs to (any token of it, spent or not). An unknown
    token is not an error: the outcome the client wants holds."""
    found = (await session.execute(_FIND, {"digest": token_digest(refresh_token)})).first()
    if found is None:
        return
    user_id = await revoke(session, session_id=found.session_id, reason="logout")
    if user_id is not None:
        await audit.record(
            session, Action.logout, Who.own(user_id, client), {"session_id": str(found.session_id)}
        )
