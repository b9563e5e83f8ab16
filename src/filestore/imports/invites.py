"""Import invites: a set-your-password e-mail to each customer user an import created without
a password (`validation_rules.send_invites`). The only module that touches `account_invites`.

Each invite is recorded in the transaction that creates its user. Once every row is imported,
the runner sends them, still as the job's claimed run: batches of invites are locked
`FOR UPDATE SKIP LOCKED`, issued a reset token, mailed and marked sent in one transaction, so
two runners of one job (a stalled worker and the one that took over) never mail the same
account, and no second token replaces the one already mailed. A runner never waits on the
other's row locks: when only locked invites are left it looks again every
`LOCKED_POLL_SECONDS` without a lock, so its counts include the other's batch once committed
(or it sends what the other gave up); after `LOCKED_WAIT_SECONDS` it ends with
`invites_pending`. Before each batch the run checks
that the job is still its own; a runner that was superseded stops. A crash after a batch was
mailed but before it committed sends that batch again (with new links): at most one batch.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore import mail
from filestore.auth import credentials
from filestore.auth import reset as reset_service
from filestore.imports.models import AccountInvite
from filestore.jobs.running import RunningJob
from filestore.requests import NO_CLIENT
from filestore.settings import Settings

log = structlog.get_logger(__name__)

INVITE_BATCH = 100
# While another runner holds the last invites (its batch is being mailed): look again this
# often, and give up after this long with `invites_pending` in the job's result.
LOCKED_POLL_SECONDS = 0.25
LOCKED_WAIT_SECONDS = 60.0

_RECORD = (
    "INSERT INTO account_invites (job_id, user_id) "
    "SELECT %(job_id)s, unnest(%(user_ids)s::bigint[]) ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True)
class Mailer:
    """What sending invites needs: sessions for the reset tokens, and the SMTP settings."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings


async def record(
    conn: psycopg.AsyncConnection[Any], *, job_id: uuid.UUID, user_ids: list[int]
) -> None:
    """Inside the transaction that created these users: they are to be invited."""
    if user_ids:
        await conn.execute(_RECORD, {"job_id": job_id, "user_ids": user_ids})


async def send(mailer: Mailer, job: RunningJob) -> dict[str, int | str]:
    """Mail every invite of the job not sent yet; the counts for the job's result. Raises
    `JobSuperseded` / `JobCancelled` (from the job) when the run must stop."""
    batch_size = INVITE_BATCH
    outcome: dict[str, int | str] = {}
    waited_since: float | None = None
    while True:
        await job.ensure_current()
        async with mailer.sessionmaker() as session:
            user_ids = await _lock_unsent(session, job.id, batch_size)
            if not user_ids:
                held = await _count_unsent(session, job.id)
                if not held:
                    break
                # The rest is locked by another runner's batch (a stale run mailing). Never
                # wait on its row locks (that wait would run into the statement bound): look
                # again shortly, without a lock, until it committed or gave them up.
                await session.rollback()
                now = time.monotonic()
                waited_since = waited_since or now
                if now - waited_since > LOCKED_WAIT_SECONDS:
                    outcome["invites_pending"] = held
                    log.warning("invites.locked_elsewhere", job_id=str(job.id), pending=held)
                    break
                await asyncio.sleep(LOCKED_POLL_SECONDS)
                continue
            waited_since = None
            error = await send_batch(session, mailer.settings, job.id, user_ids)
            if error is not None:
                await session.rollback()
                outcome["invites_error"] = error
                log.error("invites.failed", job_id=str(job.id), error=error)
                break
            await session.commit()
    async with mailer.sessionmaker() as session:
        sent, failed = (
            await session.execute(
                select(
                    func.count().filter(AccountInvite.sent_at.is_not(None)),
                    func.count().filter(AccountInvite.error.is_not(None)),
                ).where(AccountInvite.job_id == job.id)
            )
        ).one()
    outcome.update({"invites_sent": int(sent), "invites_failed": int(failed)})
    log.info("invites.sent", job_id=str(job.id), **outcome)
    return outcome


def _unsent(job_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    return (
        AccountInvite.job_id == job_id,
        AccountInvite.sent_at.is_(None),
        AccountInvite.error.is_(None),
    )


async def _lock_unsent(session: AsyncSession, job_id: uuid.UUID, limit: int) -> list[int]:
    """Up to `limit` unsent invites, locked; those another runner holds are skipped."""
    stmt = (
        select(AccountInvite.user_id)
        .where(*_unsent(job_id))
        .order_by(AccountInvite.user_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def _count_unsent(session: AsyncSession, job_id: uuid.UUID) -> int:
    """Unsent invites, locked or not (a plain read never waits on a lock)."""
    stmt = select(func.count()).select_from(AccountInvite).where(*_unsent(job_id))
    return int((await session.execute(stmt)).scalar_one())


async def send_batch(
    session: AsyncSession, settings: Settings, job_id: uuid.UUID, user_ids: list[int]
) -> str | None:
    """Issue, mail and mark one locked batch; the reason when the mail server cannot be used."""
    # Locked FOR SHARE: a change to the account (role, customer, password, active flag) waits
    # for the batch, or came first and bumped its token version, which ends the invite.
    locked = [await credentials.lock_user(session, uid, share=True) for uid in user_ids]
    users = [u for u in locked if u is not None and reset_service.invite_is_live(u)]
    changed = {u.id for u in locked if u is not None} - {u.id for u in users}
    mails = []
    for user in users:
        issued = await reset_service.issue(
            session, user=user, actor_id=None, client=NO_CLIENT, settings=settings, emailed=True
        )
        mails.append(reset_service.reset_mail(user, issued, invite=True))
    try:
        results = await mail.send_many(settings, mails)
    except mail.MailError as exc:
        return str(exc.message)
    outcomes: dict[int, str | None] = dict.fromkeys(user_ids, "user deleted")
    outcomes.update(dict.fromkeys(changed, "account changed"))
    outcomes.update({user.id: result for user, result in zip(users, results, strict=True)})
    for user_id, result in outcomes.items():
        await session.execute(
            update(AccountInvite)
            .where(AccountInvite.job_id == job_id, AccountInvite.user_id == user_id)
            .values(sent_at=func.now() if result is None else None, error=result)
        )
    return None
