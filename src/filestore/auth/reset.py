"""Password reset tokens: issued by admin/staff (or the CLI), e-mailed when SMTP is set up,
redeemed once at `POST /auth/reset-password`; and the invites an import sends to the customers
it created without a password.

A user has at most one live reset token (issuing replaces the previous one); it is stored as a
SHA-256 hash, expires after PASSWORD_RESET_TTL_HOURS and is deleted when used.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore import mail
from filestore.audit import service as audit
from filestore.audit.service import Action
from filestore.auth import passwords
from filestore.auth import service as auth_service
from filestore.auth.models import PasswordResetToken, Role, User
from filestore.auth.security import new_opaque_token, token_digest
from filestore.errors import BadRequest, Forbidden
from filestore.requests import NO_CLIENT, ClientInfo
from filestore.settings import Settings

log = structlog.get_logger(__name__)

INVALID_TOKEN = "This password reset link is invalid, used or expired"
INVITE_BATCH = 100


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


async def send_import_invites(
    maker: async_sessionmaker[AsyncSession], *, job_id: uuid.UUID, settings: Settings
) -> dict[str, int | str]:
    """E-mail a reset link to every customer user the import created without a password.

    Runs after the import completed, in batches that commit (tokens + `sent_at`) after their
    mails were accepted, so a crash re-sends at most one batch. Returns counts for the job.
    """
    outcome: dict[str, int | str] = {}
    while True:
        async with maker() as session:
            rows = (
                (
                    await session.execute(
                        text(
                            "SELECT user_id FROM account_invites WHERE job_id = :job "
                            "AND sent_at IS NULL AND error IS NULL ORDER BY user_id LIMIT :n"
                        ),
                        {"job": job_id, "n": INVITE_BATCH},
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                break
            users = [u for u in [await session.get(User, uid) for uid in rows] if u is not None]
            mails = []
            for user in users:
                issued = await issue(
                    session,
                    user=user,
                    actor_id=None,
                    client=NO_CLIENT,
                    settings=settings,
                    emailed=True,
                )
                mails.append(reset_mail(user, issued, invite=True))
            try:
                results = await mail.send_many(settings, mails)
            except mail.MailError as exc:
                await session.rollback()
                outcome["invites_error"] = str(exc.message)
                log.error("invites.failed", job_id=str(job_id), error=str(exc.message))
                break
            for user, result in zip(users, results, strict=True):
                await session.execute(
                    text(
                        "UPDATE account_invites SET "
                        "sent_at = CASE WHEN CAST(:error AS text) IS NULL THEN now() END, "
                        "error = CAST(:error AS text) WHERE job_id = :job AND user_id = :user"
                    ),
                    {"error": result, "job": job_id, "user": user.id},
                )
            missing = set(rows) - {u.id for u in users}
            for user_id in missing:  # deleted meanwhile
                await session.execute(
                    text(
                        "UPDATE account_invites SET error = 'user deleted' "
                        "WHERE job_id = :job AND user_id = :user"
                    ),
                    {"job": job_id, "user": user_id},
                )
            await session.commit()
    async with maker() as session:
        counts = (
            await session.execute(
                text(
                    "SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), "
                    "count(*) FILTER (WHERE error IS NOT NULL) "
                    "FROM account_invites WHERE job_id = :job"
                ),
                {"job": job_id},
            )
        ).one()
        outcome.update({"invites_sent": int(counts[0]), "invites_failed": int(counts[1])})
        await session.execute(
            text(
                "UPDATE background_jobs SET result = result || CAST(:result AS jsonb) "
                "WHERE id = :job"
            ),
            {"result": json.dumps(outcome), "job": job_id},
        )
        await session.commit()
    log.info("invites.sent", job_id=str(job_id), **outcome)
    return outcome
