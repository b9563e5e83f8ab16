"""Password hashing (argon2id, OWASP minimum parameters), HS256 JWT access tokens, and the
opaque random tokens (refresh, password reset) that are stored only as SHA-256 hashes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import anyio
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from filestore.errors import Unauthorized

JWT_ALGORITHM = "HS256"


@lru_cache(maxsize=1)
def password_hasher() -> PasswordHash:
    # OWASP's argon2id minimum (m=19 MiB, t=2, p=1): ~25 ms here instead of ~130 ms for the
    # library defaults, which matters for logins under load and for bulk imports.
    return PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1),))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return password_hasher().hash(secrets.token_urlsafe(16))


def hash_password_sync(password: str) -> str:
    return password_hasher().hash(password)


_limiter: tuple[asyncio.AbstractEventLoop, anyio.CapacityLimiter] | None = None


def _hash_limiter() -> anyio.CapacityLimiter:
    """At most one hash per CPU at a time: twenty concurrent logins in twenty threads would
    not finish sooner, but would starve the event loop thread of CPU (every other request)."""
    global _limiter
    loop = asyncio.get_running_loop()
    if _limiter is None or _limiter[0] is not loop:
        _limiter = (loop, anyio.CapacityLimiter(os.cpu_count() or 1))
    return _limiter[1]


async def hash_password(password: str) -> str:
    """Hash off the event loop: argon2 is deliberately slow."""
    return await anyio.to_thread.run_sync(hash_password_sync, password, limiter=_hash_limiter())


def is_usable(password_hash: str | None) -> bool:
    """False for no hash and for the `!unusable:…` marker of accounts created without one."""
    return bool(password_hash) and not str(password_hash).startswith("!")


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Verify off the event loop; with no usable hash, burn the same work so timing reveals
    nothing."""
    usable = is_usable(password_hash)

    def verify() -> bool:
        target = password_hash if usable and password_hash else _dummy_hash()
        return bool(password_hasher().verify(password, target))

    ok = await anyio.to_thread.run_sync(verify, limiter=_hash_limiter())
    return ok and usable


def unusable_password_hash() -> str:
    """A hash of a random secret nobody knows: the account exists but cannot log in yet."""
    return hash_password_sync(secrets.token_urlsafe(32))


def new_opaque_token() -> str:
    """256 random bits, URL-safe: a refresh or reset token."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of an opaque token. A fast hash is enough: the token is random,
    there is nothing to guess."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    token_version: int
    session_id: uuid.UUID | None


def create_access_token(
    *,
    user_id: int,
    token_version: int,
    secret: str,
    expires_minutes: int,
    session_id: uuid.UUID | None = None,
) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "ver": token_version,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=expires_minutes),
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


# Tokens whose signature and claims were verified, with their expiry: a client sends the same
# access token with every request for its lifetime, and HS256 verification plus claim parsing
# is most of the token check's Python time. Only what the token itself says is cached; whether
# it still speaks for anyone (active user, token version, login session not revoked) is asked
# of the database on every request (`auth.service.user_for_token`), and expiry is checked here
# on every hit.
VERIFIED_CACHE_SIZE = 4096
_verified: OrderedDict[tuple[str, str], tuple[AccessClaims, float]] = OrderedDict()


def clear_verified_cache() -> None:
    _verified.clear()


def decode_access_claims(token: str, *, secret: str) -> AccessClaims:
    """The claims of a valid access token; 401 for anything else (an expired token is refused
    even when its signature was verified before)."""
    key = (secret, token)
    hit = _verified.get(key)
    if hit is not None:
        claims, expires = hit
        if time.time() >= expires:
            _verified.pop(key, None)
            raise Unauthorized("Token has expired", code="token_expired")
        return claims
    claims, expires = _verify_access_token(token, secret=secret)
    _verified[key] = (claims, expires)
    if len(_verified) > VERIFIED_CACHE_SIZE:
        _verified.popitem(last=False)  # the oldest verified: bounded memory, no LRU upkeep
    return claims


def _verify_access_token(token: str, *, secret: str) -> tuple[AccessClaims, float]:
    """Signature, expiry and claims of an access token, and when it expires (epoch seconds)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "sub", "iat"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token has expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token", code="invalid_token") from exc
    if claims.get("typ") != "access":
        raise Unauthorized("Invalid token", code="invalid_token")
    try:
        sid = claims.get("sid")
        access = AccessClaims(
            user_id=int(claims["sub"]),
            token_version=int(claims.get("ver", 0)),
            session_id=uuid.UUID(str(sid)) if sid is not None else None,
        )
        return access, float(claims["exp"])
    except (TypeError, ValueError) as exc:
        raise Unauthorized("Invalid token", code="invalid_token") from exc


def decode_access_token(token: str, *, secret: str) -> tuple[int, int]:
    """Return (user id, token version) of a valid access token; 401 for anything else."""
    claims = decode_access_claims(token, secret=secret)
    return claims.user_id, claims.token_version
