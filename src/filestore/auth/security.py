"""Password hashing (argon2id, OWASP minimum parameters) and HS256 JWT access tokens."""

from __future__ import annotations

import secrets
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


async def hash_password(password: str) -> str:
    """Hash off the event loop: argon2 is deliberately slow."""
    return await anyio.to_thread.run_sync(hash_password_sync, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Verify off the event loop; with no hash, burn the same work so timing reveals nothing."""
    target = password_hash or _dummy_hash()
    ok = await anyio.to_thread.run_sync(password_hasher().verify, password, target)
    return bool(ok) and password_hash is not None


def unusable_password_hash() -> str:
    """A hash of a random secret nobody knows: the account exists but cannot log in yet."""
    return hash_password_sync(secrets.token_urlsafe(32))


def create_access_token(
    *, user_id: int, token_version: int, secret: str, expires_minutes: int
) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "ver": token_version,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=expires_minutes),
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> tuple[int, int]:
    """Return (user id, token version) of a valid access token; 401 for anything else."""
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
        return int(claims["sub"]), int(claims.get("ver", 0))
    except (TypeError, ValueError) as exc:
        raise Unauthorized("Invalid token", code="invalid_token") from exc
