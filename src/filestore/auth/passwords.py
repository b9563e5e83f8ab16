"""The password rules (OWASP ASVS 5.0 V6.2): length, not a common password, not the account's
own name. No composition rules (no "one digit, one symbol"): they do not make passwords
stronger, length and a block list do.

The common-password list is zxcvbn's (30,000 passwords from real breaches, MIT licensed),
shipped inside its wheel; it is loaded once per process, on first use.
"""

from __future__ import annotations

from functools import lru_cache

from filestore.errors import Unprocessable

MIN_LENGTH = 8
MAX_LENGTH = 1024  # far above ASVS's 64; only a guard against megabyte "passwords"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


class WeakPassword(Unprocessable):
    """422 with the reason; `code` tells which rule failed."""

    code = "weak_password"


def problem(
    password: str, *, username: str | None = None, email: str | None = None
) -> WeakPassword | None:
    """Why `password` is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return WeakPassword(
            f"Password is too short: use at least {MIN_LENGTH} characters",
            code="password_too_short",
        )
    if len(password) > MAX_LENGTH:
        return WeakPassword(
            f"Password is too long: at most {MAX_LENGTH} characters", code="password_too_long"
        )
    folded = password.casefold()
    for own in (username, email):
        if own and folded == own.strip().casefold():
            return WeakPassword(
                "Password must not be the same as the username or e-mail address",
                code="password_matches_account",
            )
    if password.lower() in common_passwords():
        return WeakPassword(
            "Password is too common: it appears in lists of passwords attackers try first",
            code="password_too_common",
        )
    return None


def check(password: str, *, username: str | None = None, email: str | None = None) -> None:
    """Raise `WeakPassword` (422) unless `password` follows the rules."""
    error = problem(password, username=username, email=email)
    if error is not None:
        raise error
