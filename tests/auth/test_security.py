"""The production password hash: argon2id at OWASP's minimum cost (the test process itself
hashes at a cheaper cost, see `cheap_password_hashing` in tests/conftest.py)."""

from __future__ import annotations

from filestore.auth import security

REAL_PASSWORD_HASHER = security.password_hasher.__wrapped__


def test_production_hashes_are_argon2id_at_the_owasp_minimum() -> None:
    hashed = REAL_PASSWORD_HASHER().hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert REAL_PASSWORD_HASHER().verify("correct horse battery staple", hashed)
    assert not REAL_PASSWORD_HASHER().verify("correct horse battery stapler", hashed)


def test_cheap_test_hashes_are_verified_by_the_same_code() -> None:
    hashed = security.hash_password_sync("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert security.password_hasher().verify("correct horse battery staple", hashed)
