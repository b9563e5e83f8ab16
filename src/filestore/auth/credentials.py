"""Ending a user's credentials, and changing a password. No HTTP here.

One rule for every credential a user holds: a change of password, role, customer or active flag
ends them all, in the transaction that makes the change (`end_all`): access tokens (they carry
`token_version`, which is bumped), refresh tokens (their sessions are revoked) and reset links,
mailed invites included (their token rows are deleted); an invite not sent yet is dropped by
its sender (`reset.invite_is_live`). Whoever issues a reset link locks the user row first
(`reset.issue`), so no link issued for the account as it was survives the change.

Passwords are hashed with no database connection held: argon2 takes 25 to 130 ms, and a burst of
requests holding pooled connections (or a row lock) through it would stall every other request.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.audit import service as audit
from filestore.audit.service import Action, Who
from filestore.auth import passwords, throttle
from filestore.auth import sessions as auth_sessions
from filestore.auth.models import PasswordResetToken, User
from filestore.auth.security import hash_password, verify_password
from filestore.db import side_transaction
from filestore.errors import BadRequest, Conflict, NotFound, TooManyRequests
from filestore.requests import ClientInfo
from filestore.settings import Settings


async def end_all(session: AsyncSession, *, user: User, reason: str) -> None:
    """End every token, session and reset link of `user` (whose row the caller has locked)."""
    user.token_version += 1
    await auth_sessions.revoke_all(session, user_id=user.id, reason=reason)
    await session.execute(delete(PasswordResetToken).where(PasswordResetToken.user_id == user.id))
    await session.flush()


async def store_password(
    session: AsyncSession, *, user: User, password_hash: str, reason: str
) -> None:
    """Store a new (already hashed) password and end every credential the user had."""
    user.password_hash = password_hash
    user.password_reset_required = False
    await throttle.clear_account(
        session, throttle.Keys(account=throttle.account_key(user_id=user.id, login=""), ip=None)
    )
    await end_all(session, user=user, reason=reason)


async def lock_user(session: AsyncSession, user_id: int, *, share: bool = False) -> User | None:
    """The user's current row, locked until the end of the transaction (`FOR SHARE` to only
    keep it from changing)."""
    return await session.get(User, user_id, with_for_update={"read": share}, populate_existing=True)


async def change_password(
    session: AsyncSession,
    *,
    user_id: int,
    current_password: str,
    new_password: str,
    client: ClientInfo,
    settings: Settings,
) -> None:
    """Needs the current password (throttled like a login); then every old token is dead."""
    # Like `login`: read in a short transaction of its own, hash with no connection held.
    async with side_transaction(session) as lookup:
        found = await lookup.get(User, user_id)
        if found is None:
            raise NotFound("User not found", code="user_not_found")
        keys = throttle.Keys(
            account=throttle.account_key(user_id=user_id, login=""),
            ip=throttle.ip_key(client.ip),
        )
        wait = await throttle.locked_for(lookup, keys)
    if wait is not None:
        raise TooManyRequests(
            "Too many failed attempts; try again later", retry_after=wait, code="login_locked"
        )
    if not await verify_password(current_password, found.password_hash):
        async with side_transaction(session) as side:
            await throttle.record_failure(side, keys, settings)
            await audit.record(
                side,
                Action.login_failure,
                Who.own(user_id, client),
                {"reason": "bad_password", "via": "change_password"},
            )
        raise BadRequest("The current password is not correct", code="invalid_current_password")
    passwords.check(new_password, username=found.username, email=found.email)
    new_hash = await hash_password(new_password)
    # The short write: only if nothing changed since the current password was checked.
    user = await lock_user(session, user_id)
    if (
        user is None
        or user.password_hash != found.password_hash
        or user.token_version != found.token_version
    ):
        raise Conflict("Your account changed meanwhile; log in again", code="account_changed")
    await store_password(session, user=user, password_hash=new_hash, reason="password_changed")
    await audit.record(session, Action.password_changed, Who.own(user_id, client))
