"""Reset links die with every change of the account (the privilege escalation a probe found),
passwords are hashed with nothing held, and the headers of token responses and the reset page."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import anyio.from_thread
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from filestore.auth import credentials, security
from filestore.auth import reset as reset_service
from filestore.errors import Conflict
from filestore.requests import NO_CLIENT
from filestore.settings import Settings
from tests.fixtures.app import AsyncApi, bound_sessionmaker


def strong() -> str:
    return "Pw-" + secrets.token_urlsafe(12)


async def issue(api: AsyncApi, user_id: int) -> str:
    response = await api.post(f"/users/{user_id}/password-reset")
    assert response.status_code == 200, response.text
    token: str = response.json()["reset_token"]
    return token


async def redeem(api: AsyncApi, token: str, password: str | None = None) -> httpx.Response:
    body = {"token": token, "new_password": password or strong()}
    return await api.client.post("/auth/reset-password", json=body)


def assert_dead(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_reset_token"


class TestResetLinksDieWithTheAccountsChanges:
    async def test_a_staff_link_dies_when_the_customer_user_is_promoted_to_admin(
        self, app_client: AsyncApi, admin_client: AsyncApi
    ) -> None:
        staff = await admin_client.user_api("staff")
        customer = await admin_client.new_customer()
        user, _ = await admin_client.new_user("customer", customer["id"])
        token = await issue(staff, user["id"])
        promoted = await admin_client.patch(f"/users/{user['id']}", json={"role": "admin"})
        assert promoted.status_code == 200, promoted.text

        stolen_password = strong()
        assert_dead(await redeem(app_client, token, stolen_password))
        response = await app_client.client.post(
            "/auth/login", data={"username": user["username"], "password": stolen_password}
        )
        assert response.status_code == 401

    @pytest.mark.parametrize(
        "change",
        [{"role": "staff"}, {"customer_id": "other"}, {"is_active": False}],
        ids=["role", "customer", "deactivated"],
    )
    async def test_any_change_of_role_customer_or_active_flag(
        self, app_client: AsyncApi, admin_client: AsyncApi, change: dict[str, Any]
    ) -> None:
        customer = await admin_client.new_customer()
        user, _ = await admin_client.new_user("customer", customer["id"])
        token = await issue(admin_client, user["id"])
        if change.get("customer_id") == "other":
            change = {"customer_id": (await admin_client.new_customer())["id"]}
        patched = await admin_client.patch(f"/users/{user['id']}", json=change)
        assert patched.status_code == 200, patched.text
        assert_dead(await redeem(app_client, token))

    async def test_reactivation(self, app_client: AsyncApi, admin_client: AsyncApi) -> None:
        user, _ = await admin_client.new_user("staff")
        path = f"/users/{user['id']}"
        assert (await admin_client.patch(path, json={"is_active": False})).status_code == 200
        token = await issue(admin_client, user["id"])
        assert (await admin_client.patch(path, json={"is_active": True})).status_code == 200
        assert_dead(await redeem(app_client, token))

    async def test_the_user_changing_the_password(
        self, app_client: AsyncApi, admin_client: AsyncApi
    ) -> None:
        user, password = await admin_client.new_user("staff")
        token = await issue(admin_client, user["id"])
        api = await app_client.login(user["username"], password)
        changed = await api.post(
            "/auth/change-password",
            json={"current_password": password, "new_password": strong()},
        )
        assert changed.status_code == 204, changed.text
        assert_dead(await redeem(app_client, token))

    async def test_a_patch_that_changes_nothing_keeps_the_link(
        self, app_client: AsyncApi, admin_client: AsyncApi
    ) -> None:
        user, _ = await admin_client.new_user("staff")
        token = await issue(admin_client, user["id"])
        same = await admin_client.patch(f"/users/{user['id']}", json={"role": "staff"})
        assert same.status_code == 200, same.text
        assert (await redeem(app_client, token)).status_code == 204


class Probe:
    """The real argon2 hasher, noting whether the request's session held a connection (an
    open transaction, and with it any row lock) each time it ran."""

    def __init__(self, session: AsyncSession) -> None:
        self.real = security.password_hasher()
        self.session = session
        self.held: list[bool] = []
        self.meanwhile: Callable[[], Coroutine[Any, Any, None]] | None = None

    def _note(self) -> None:
        self.held.append(self.session.in_transaction())
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            anyio.from_thread.run(meanwhile)

    def hash(self, password: str) -> str:
        self._note()
        return self.real.hash(password)

    def verify(self, password: str, hashed: str) -> bool:
        self._note()
        return self.real.verify(password, hashed)


@pytest.fixture
async def request_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session like a request's: nothing begun yet."""
    async with bound_sessionmaker(db_connection)() as session:
        yield session


@pytest.fixture
def watch_hashing(
    request_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Probe]:
    """From the call on, every hash and verify goes through a `Probe`."""

    def install() -> Probe:
        probe = Probe(request_session)
        monkeypatch.setattr(security, "password_hasher", lambda: probe)
        return probe

    return install


class TestHashingHoldsNoConnection:
    async def test_change_password(
        self,
        admin_client: AsyncApi,
        request_session: AsyncSession,
        watch_hashing: Callable[[], Probe],
        fast_settings_base: Settings,
    ) -> None:
        user, password = await admin_client.new_user("staff")
        probe = watch_hashing()
        await credentials.change_password(
            request_session,
            user_id=user["id"],
            current_password=password,
            new_password=strong(),
            client=NO_CLIENT,
            settings=fast_settings_base,
        )
        assert probe.held == [False, False]  # verify the current one, hash the new one

    async def test_reset_password(
        self,
        admin_client: AsyncApi,
        request_session: AsyncSession,
        watch_hashing: Callable[[], Probe],
    ) -> None:
        user, _ = await admin_client.new_user("staff")
        token = await issue(admin_client, user["id"])
        probe = watch_hashing()
        await reset_service.reset_password(
            request_session, token=token, new_password=strong(), client=NO_CLIENT
        )
        assert probe.held == [False]

    async def test_a_change_made_while_hashing_wins(
        self,
        admin_client: AsyncApi,
        db_connection: AsyncConnection,
        request_session: AsyncSession,
        watch_hashing: Callable[[], Probe],
        fast_settings_base: Settings,
    ) -> None:
        """Nothing is locked while hashing, so the write checks that the account is as it was
        when the current password was verified."""
        user, password = await admin_client.new_user("staff")

        async def deactivate() -> None:
            async with bound_sessionmaker(db_connection)() as other:
                locked = await credentials.lock_user(other, user["id"])
                assert locked is not None
                await credentials.end_all(other, user=locked, reason="deactivated")
                await other.commit()

        probe = watch_hashing()
        probe.meanwhile = deactivate
        with pytest.raises(Conflict) as refused:
            await credentials.change_password(
                request_session,
                user_id=user["id"],
                current_password=password,
                new_password=strong(),
                client=NO_CLIENT,
                settings=fast_settings_base,
            )
        assert refused.value.code == "account_changed"
        await request_session.rollback()


class TestHeaders:
    async def test_token_and_profile_responses_are_not_stored(
        self, app_client: AsyncApi, admin_client: AsyncApi, fast_settings_base: Settings
    ) -> None:
        user, password = await admin_client.new_user("staff")
        login = await app_client.client.post(
            "/auth/login", json={"username": user["username"], "password": password}
        )
        refreshed = await app_client.client.post(
            "/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
        )
        me = await admin_client.get("/auth/me")
        reset = await admin_client.post(f"/users/{user['id']}/password-reset")
        for response in (login, refreshed, me, reset):
            assert response.status_code == 200, response.text
            assert response.headers["cache-control"] == "no-store", response.request.url

    async def test_the_reset_page_may_not_be_framed(self, app_client: AsyncApi) -> None:
        page = await app_client.get("/auth/reset-password")
        assert page.status_code == 200
        policy = [p.strip() for p in page.headers["content-security-policy"].split(";")]
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-frame-options"] == "DENY"
