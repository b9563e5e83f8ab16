"""Brute-force protection: failed-login counters in PostgreSQL, shared by every API process.

Two kinds of key are counted within a window (LOGIN_FAILURE_WINDOW_SECONDS, default 15 min):
the account (`user:<id>`, or a hash of the login name when no such user exists, so unknown
names lock exactly like real ones and reveal nothing) and the client address (`ip:<addr>`, an
IPv6 client by its /64). LOGIN_MAX_FAILURES (5) failures for an account, or
LOGIN_IP_MAX_FAILURES (100) from one address, lock further logins for that key with 429 and
`Retry-After`, even with the right password. Each lockout of the same key lasts twice the one
before (one window, two, four…, at most LOGIN_LOCKOUT_MAX_SECONDS); a successful login clears
the account's count and back-off, never the address's (a sprayer with one valid account must
not reset its own counter).

Every update is a single upsert on the key's row, so concurrent failures in N processes count
exactly.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.settings import Settings

_COUNT_FAILURE = text(
    """
    INSERT INTO login_throttle AS t (key, failures, window_started_at, updated_at)
    VALUES (:key, 1, now(), now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_started_at <= now() - make_interval(secs => :window)
                        THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN t.window_started_at <= now() - make_interval(secs => :window)
                                 THEN now() ELSE t.window_started_at END,
        -- the back-off forgets lockouts that ended long ago
        lockouts = CASE WHEN t.locked_until < now() - make_interval(secs => :max_lock)
                        THEN 0 ELSE t.lockouts END,
        updated_at = now()
    RETURNING failures, lockouts
    """
)

_LOCK = text(
    """
    UPDATE login_throttle SET
        locked_until = now()
            + make_interval(secs => least(:window * power(2, lockouts), :max_lock)),
        lockouts = lockouts + 1, failures = 0, window_started_at = now()
    WHERE key = :key
    RETURNING ceil(extract(epoch FROM locked_until - now()))::int
    """
)

_LOCKED_FOR = text(
    """
    SELECT ceil(extract(epoch FROM max(locked_until) - now()))::int FROM login_throttle
    WHERE key = ANY(:keys) AND locked_until > now()
    """
)

_FORGET_OLD = text(
    """
    DELETE FROM login_throttle
    WHERE updated_at < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())
    """
)


def account_key(*, user_id: int | None, login: str) -> str:
    if user_id is not None:
        return f"user:{user_id}"
    # An unknown name may be a password typed in the wrong field: keep only a hash of it.
    digest = hashlib.sha256(login.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"login:{digest}"


def ip_key(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"ip:{ip[:60]}"
    if address.version == 6:
        return f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"ip:{address}"


@dataclass(frozen=True)
class Keys:
    account: str
    ip: str | None

    def all(self) -> list[str]:
        return [self.account] + ([self.ip] if self.ip else [])


async def locked_for(session: AsyncSession, keys: Keys) -> int | None:
    """Seconds until the longest lock on these keys ends, or None when none is locked."""
    seconds = (await session.execute(_LOCKED_FOR, {"keys": keys.all()})).scalar()
    return None if seconds is None else max(1, int(seconds))


async def record_failure(session: AsyncSession, keys: Keys, settings: Settings) -> int | None:
    """Count a failure against the account and the address; the lock it started (seconds), if
    this failure reached a limit."""
    window = settings.login_failure_window_seconds
    max_lock = max(settings.login_lockout_max_seconds, window)
    limits = [(keys.account, settings.login_max_failures)]
    if keys.ip:
        limits.append((keys.ip, settings.login_ip_max_failures))
    started: int | None = None
    for key, limit in limits:
        row = (
            await session.execute(
                _COUNT_FAILURE, {"key": key, "window": window, "max_lock": max_lock}
            )
        ).one()
        if row.failures >= limit:
            seconds = (
                await session.execute(_LOCK, {"key": key, "window": window, "max_lock": max_lock})
            ).scalar_one()
            started = max(started or 0, int(seconds))
    if random.random() < 0.01:  # housekeeping now and then, not on every failure
        await session.execute(_FORGET_OLD)
    return started


async def clear_account(session: AsyncSession, keys: Keys) -> None:
    """A successful login: the account's count and back-off start over."""
    await session.execute(
        text("DELETE FROM login_throttle WHERE key = :key"), {"key": keys.account}
    )
