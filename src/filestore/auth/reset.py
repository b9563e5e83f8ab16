"""Password reset tokens: issued by admin/staff (or the CLI), e-mailed when SMTP is set up,
redeemed once at `POST /auth/reset-password`. Import invites (`imports/invites.py`) are the
same tokens and mail, sent to the customers an import created without a password.

A user has at most one live reset token (issuing replaces the previous one); it is stored as a
SHA-256 hash, expires after PASSWORD_RESET_TTL_HOURS and is deleted when used, and when the
user's password, role, customer or active flag changes (`credentials.end_all`). A link is
mailed only after the transaction that stored its token committed (`deliver`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from filestore import mail
from filestore.audit import service as audit
from filestore.audit.service import Action, Who
from filestore.auth import credentials, passwords
from filestore.auth.models import PasswordResetToken, Role, User
from filestore.auth.schemas import PasswordResetOut
from filestore.auth.security import hash_password, new_opaque_token, token_digest
from filestore.db import side_transaction
from filestore.errors import BadRequest, Forbidden, NotFound
from filestore.requests import ClientInfo
from filestore.settings import Settings

log = structlog.get_logger(__name__)

INVALID_TOKEN = "This password reset link is invalid, used or expired"


@dataclass(frozen=True)
class IssuedReset:
    token: str
    url: str
    expires_at: datetime
    emailed: bool = False
    # The mail that carries the link, for `deliver` once the token is committed.
    mail: mail.Mail | None = None


async def issue(
    session: AsyncSession,
    *,
    user: User,
    actor_id: int | None,
    client: ClientInfo,
    settings: Settings,
    emailed: bool = False,
) -> IssuedReset:
    """A new reset token for `user`; any earlier one stops working."""
    # Keeps the account from changing until this transaction ends: a change made meanwhile
    # waits, then deletes this token with the others (`credentials.end_all`).
    if await credentials.lock_user(session, user.id, share=True) is None:
        raise NotFound(f"User {user.id} not found", code="user_not_found")
    token = new_opaque_token()
    expires = datetime.now(UTC) + timedelta(hours=settings.password_reset_ttl_hours)
    values = {"token_hash": token_digest(token), "expires_at": expires, "created_by": actor_id}
    await session.execute(
        insert(PasswordResetToken)
        .values(user_id=user.id, **values)
        .on_conflict_do_update(
            index_elements=[PasswordResetToken.user_id],
            set_={**values, "created_at": text("now()")},
        )
    )
    await audit.record(
        session,
        Action.password_reset_issued,
        Who(client, actor_id=actor_id, target_user_id=user.id),
        {"emailed": emailed},
    )
    return IssuedReset(token, settings.password_reset_link(token), expires, emailed)


def reset_mail(user: User, issued: IssuedReset, *, invite: bool = False) -> mail.Mail:
    assert user.email
    hours = max(1, round((issued.expires_at - datetime.now(UTC)).total_seconds() / 3600))
    greeting = f"Hello {user.full_name}," if user.full_name else "Hello,"
    if invite:
        subject = "Your account: choose a password"
        intro = "An account has been created for you. To log in, choose your password here:"
    else:
        subject = "Reset your password"
        intro = "A password reset was requested for your account. Choose a new password here:"
    body = (
        f"{greeting}\n\n{intro}\n\n{issued.url}\n\n"
        f"The link works once and expires in {hours} hour{'s' if hours != 1 else ''}. "
        f"Your login is {user.email}.\n\nIf you did not expect this e-mail, ignore it.\n"
    )
    return mail.Mail(to=user.email, subject=subject, body=body)


async def issue_for_user(
    session: AsyncSession, *, user_id: int, actor: User, client: ClientInfo, settings: Settings
) -> IssuedReset:
    """`POST /users/{id}/password-reset`: admins for anyone, staff for customer users only.
    With SMTP configured and an e-mail on file, the link is for the user, not the caller: it
    comes with its mail, which the caller sends with `deliver` after committing."""
    # Locked before the role is checked: a promotion committed meanwhile is seen here.
    user = await credentials.lock_user(session, user_id, share=True)
    if user is None:
        raise NotFound(f"User {user_id} not found", code="user_not_found")
    if actor.role is Role.staff and user.role is not Role.customer:
        raise Forbidden("Staff may reset only customer users' passwords", code="forbidden_role")
    if actor.role not in (Role.admin, Role.staff):
        raise Forbidden("Your role may not do this", code="forbidden_role")
    emailed = settings.smtp_enabled and bool(user.email)
    issued = await issue(
        session, user=user, actor_id=actor.id, client=client, settings=settings, emailed=emailed
    )
    if emailed:
        issued = replace(issued, mail=reset_mail(user, issued))
    return issued


async def deliver(settings: Settings, issued: IssuedReset) -> None:
    """Mail the link, once the transaction that stored its token has committed: a failed
    commit must not leave the user holding a link to a token that never existed."""
    if issued.mail is not None:
        await mail.send(settings, issued.mail)


async def commit_and_hand_over(
    session: AsyncSession, settings: Settings, issued: IssuedReset
) -> PasswordResetOut:
    """Commit the link's token, then mail it (`deliver`); the answer shows the link only
    when it was not e-mailed."""
    await session.commit()
    await deliver(settings, issued)
    return PasswordResetOut(
        reset_token=None if issued.emailed else issued.token,
        reset_url=None if issued.emailed else issued.url,
        expires_at=issued.expires_at,
        emailed=issued.emailed,
    )


async def reset_password(
    session: AsyncSession, *, token: str, new_password: str, client: ClientInfo
) -> User:
    """Redeem a reset token: a new password, every old session gone. The token stays usable
    when the new password is refused (422), so the user can try another."""
    digest = token_digest(token)
    # Like `login`: read in a short transaction of its own, hash with no connection held.
    async with side_transaction(session) as lookup:
        holder = (
            await lookup.execute(
                select(User)
                .join(PasswordResetToken, PasswordResetToken.user_id == User.id)
                .where(
                    PasswordResetToken.token_hash == digest,
                    PasswordResetToken.expires_at > func.now(),
                )
            )
        ).scalar_one_or_none()
    if holder is None:
        raise BadRequest(INVALID_TOKEN, code="invalid_reset_token")
    passwords.check(new_password, username=holder.username, email=holder.email)
    new_hash = await hash_password(new_password)
    # The user row first, then the token (the order every writer keeps): spent only if it
    # is still this user's live token, not replaced or ended by a change meanwhile.
    user = await credentials.lock_user(session, holder.id)
    spent = await session.execute(
        delete(PasswordResetToken)
        .where(
            PasswordResetToken.token_hash == digest,
            PasswordResetToken.user_id == holder.id,
            PasswordResetToken.expires_at > func.now(),
        )
        .returning(PasswordResetToken.user_id)
    )
    if user is None or spent.first() is None:
        raise BadRequest(INVALID_TOKEN, code="invalid_reset_token")
    await credentials.store_password(
        session, user=user, password_hash=new_hash, reason="password_reset"
    )
    await audit.record(session, Action.password_reset, Who.own(user.id, client))
    return user


def invite_is_live(user: User) -> bool:
    """An import invite speaks for the account as the import created it, at token version 0
    (the invite is recorded in the transaction that creates the user). Any change since (a
    password, the role, the customer, the active flag) bumps the version and ends it."""
    return user.token_version == 0
