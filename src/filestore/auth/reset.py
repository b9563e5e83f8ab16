"""Password reset tokens: issued by admin/staff (or the CLI), e-mailed when SMTP is set up,
redeemed once at `POST /auth/reset-password`. Import invites (`imports/invites.py`) are the
same tokens and mail, sent to the customers an import created without a password.

A user has at most one live reset token (issuing replaces the previous one); it is stored as a
SHA-256 hash, expires after PASSWORD_RESET_TTL_HOURS and is deleted when used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from filestore import mail
from filestore.audit import service as audit
from filestore.audit.service import Action, ClientInfo
from filestore.auth import passwords
from filestore.auth import service as auth_service
from filestore.auth.models import PasswordResetToken, Role, User
from filestore.auth.security import new_opaque_token, token_digest
from filestore.errors import BadRequest, Forbidden
from filestore.settings import Settings

log = structlog.get_logger(__name__)

INVALID_TOKEN = "This password reset link is invalid, used or expired"


@dataclass(frozen=True)
class IssuedReset:
    token: str
    url: str
    expires_at: datetime
    emailed: bool = False


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
        action=Action.password_reset_issued,
        client=client,
        actor_id=actor_id,
        target_user_id=user.id,
        details={"emailed": emailed},
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
    With SMTP configured and an e-mail on file, the link goes to the user, not the caller."""
    user = await auth_service.get_or_404(session, user_id)
    if actor.role is Role.staff and user.role is not Role.customer:
        raise Forbidden("Staff may reset only customer users' passwords", code="forbidden_role")
    if actor.role not in (Role.admin, Role.staff):
        raise Forbidden("Your role may not do this", code="forbidden_role")
    emailed = settings.smtp_enabled and bool(user.email)
    issued = await issue(
        session, user=user, actor_id=actor.id, client=client, settings=settings, emailed=emailed
    )
    if emailed:
        await mail.send(settings, reset_mail(user, issued))
    return issued


async def reset_password(
    session: AsyncSession, *, token: str, new_password: str, client: ClientInfo
) -> User:
    """Redeem a reset token: a new password, every old session gone. The token stays usable
    when the new password is refused (422), so the user can try another."""
    row = (
        await session.execute(
            text(
                "SELECT user_id, expires_at > now() AS live FROM password_reset_tokens "
                "WHERE token_hash = :digest FOR UPDATE"
            ),
            {"digest": token_digest(token)},
        )
    ).first()
    if row is None or not row.live:
        raise BadRequest(INVALID_TOKEN, code="invalid_reset_token")
    user = await auth_service.get_or_404(session, int(row.user_id), for_update=True)
    passwords.check(new_password, username=user.username, email=user.email)
    await session.execute(
        text("DELETE FROM password_reset_tokens WHERE user_id = :id"), {"id": user.id}
    )
    await auth_service.set_password(
        session, user=user, password=new_password, reason="password_reset"
    )
    await audit.record(
        session,
        action=Action.password_reset,
        client=client,
        actor_id=user.id,
        target_user_id=user.id,
    )
    return user
