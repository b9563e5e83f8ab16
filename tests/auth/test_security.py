"""The production password hash: argon2id at OWASP's minimum cost (the test process itself
hashes at a cheaper cost, see `cheap_password_hashing` in tests/conftest.py); the cache of
verified access tokens, which must not outlive a token's expiry or its revocation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from filestore.auth import security
from filestore.errors import Unauthorized
from tests.fixtures.app import AsyncApi

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


# -- the verified-token cache: signatures are cached, expiry and revocation are not -----------

SECRET = "s" * 40


def _token(**claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"sub": "7", "ver": 3, "typ": "access", "iat": now, "exp": now + 60}
    body.update(claims)
    return jwt.encode(body, SECRET, algorithm=security.JWT_ALGORITHM)


@pytest.fixture(autouse=True)
def empty_token_cache() -> Iterator[None]:
    security.clear_verified_cache()
    yield
    security.clear_verified_cache()


class TestVerifiedTokenCache:
    def test_a_second_check_of_a_token_does_not_verify_it_again(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = _token()
        first = security.decode_access_claims(token, secret=SECRET)
        monkeypatch.setattr(jwt, "decode", _must_not_run)
        assert security.decode_access_claims(token, secret=SECRET) == first
        assert first == security.AccessClaims(user_id=7, token_version=3, session_id=None)

    def test_a_cached_token_still_expires(self, monkeypatch: pytest.MonkeyPatch) -> None:
        token = _token()
        security.decode_access_claims(token, secret=SECRET)
        later = time.time() + 61
        monkeypatch.setattr(time, "time", lambda: later)
        with pytest.raises(Unauthorized) as refused:
            security.decode_access_claims(token, secret=SECRET)
        assert refused.value.code == "token_expired"
        assert not security._verified  # it left the cache: next time the JWT check decides

    def test_a_token_verified_with_one_secret_is_not_valid_under_another(self) -> None:
        token = _token()
        security.decode_access_claims(token, secret=SECRET)
        with pytest.raises(Unauthorized):
            security.decode_access_claims(token, secret="t" * 40)

    def test_refused_tokens_are_not_cached(self) -> None:
        token = _token(exp=int(time.time()) - 5)
        for _ in range(2):
            with pytest.raises(Unauthorized):
                security.decode_access_claims(token, secret=SECRET)
        assert not security._verified

    def test_the_cache_is_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(security, "VERIFIED_CACHE_SIZE", 3)
        tokens = [_token(sub=str(i)) for i in range(5)]
        for token in tokens:
            security.decode_access_claims(token, secret=SECRET)
        assert len(security._verified) == 3
        assert (SECRET, tokens[0]) not in security._verified
        assert (SECRET, tokens[-1]) in security._verified


def _must_not_run(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the signature was verified again")


class TestRevocationWithACachedToken:
    """The cache holds only what the token says: the database still decides every request."""

    async def _logged_in(self, admin_client: AsyncApi) -> tuple[dict[str, Any], dict[str, Any]]:
        user, password = await admin_client.new_user("staff")
        response = await admin_client.client.post(
            "/auth/login", data={"username": user["username"], "password": password}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        me = AsyncApi(admin_client.client, tokens["access_token"])
        for _ in range(2):  # the second check is served from the cache
            assert (await me.get("/auth/me")).status_code == 200
        return user, tokens

    async def test_logout_refuses_the_cached_access_token_at_once(
        self, admin_client: AsyncApi
    ) -> None:
        _, tokens = await self._logged_in(admin_client)
        out = await admin_client.client.post(
            "/auth/logout", json={"refresh_token": tokens["refresh_token"]}
        )
        assert out.status_code == 204, out.text
        me = await AsyncApi(admin_client.client, tokens["access_token"]).get("/auth/me")
        assert me.status_code == 401
        assert me.json()["code"] == "invalid_token"

    async def test_deactivation_refuses_the_cached_access_token_at_once(
        self, admin_client: AsyncApi
    ) -> None:
        user, tokens = await self._logged_in(admin_client)
        changed = await admin_client.patch(f"/users/{user['id']}", json={"is_active": False})
        assert changed.status_code == 200, changed.text
        me = await AsyncApi(admin_client.client, tokens["access_token"]).get("/auth/me")
        assert me.status_code == 401

    async def test_a_role_change_refuses_the_token_on_the_file_reads_at_once(
        self, admin_client: AsyncApi
    ) -> None:
        # The file reads check the token as a Core row (`auth.principal`), not the ORM user:
        # the same checks must hold there.
        user, tokens = await self._logged_in(admin_client)
        reader = AsyncApi(admin_client.client, tokens["access_token"])
        customer = await admin_client.new_customer()
        uploaded = await admin_client.upload(b"a,b\n1,2\n", customer_id=customer["id"])
        assert uploaded.status_code == 201, uploaded.text
        file = uploaded.json()
        for path in (f"/files/customer/{customer['id']}", f"/files/{file['id']}"):
            assert (await reader.get(path)).status_code == 200
        changed = await admin_client.patch(f"/users/{user['id']}", json={"role": "admin"})
        assert changed.status_code == 200, changed.text
        for path in (f"/files/customer/{customer['id']}", f"/files/{file['id']}"):
            refused = await reader.get(path)
            assert refused.status_code == 401, path
            assert refused.json()["code"] == "invalid_token"

    async def test_me_from_the_token_row_equals_the_stored_user(
        self, admin_client: AsyncApi
    ) -> None:
        user, tokens = await self._logged_in(admin_client)
        me = await AsyncApi(admin_client.client, tokens["access_token"]).get("/auth/me")
        stored = await admin_client.get(f"/users/{user['id']}")
        assert stored.status_code == 200, stored.text
        assert me.json() == stored.json()
