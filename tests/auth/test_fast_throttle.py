"""Login throttling through the app: failures lock the account, the right password included."""

from __future__ import annotations

from filestore.settings import Settings
from tests.fixtures.app import AsyncApi


async def login(api: AsyncApi, username: str, password: str) -> int:
    response = await api.client.post(
        "/auth/login", data={"username": username, "password": password}
    )
    if response.status_code != 200:
        assert response.json()["code"], response.text
    return response.status_code


async def test_failures_lock_the_account_even_for_the_right_password(
    app_client: AsyncApi, admin_client: AsyncApi, fast_settings_base: Settings
) -> None:
    user, password = await admin_client.new_user("staff")
    statuses = [
        await login(app_client, user["username"], "wrong-" + password)
        for _ in range(fast_settings_base.login_max_failures)
    ]
    assert statuses == [401] * fast_settings_base.login_max_failures
    assert await login(app_client, user["username"], password) == 429


async def test_a_success_before_the_limit_starts_the_count_again(
    app_client: AsyncApi, admin_client: AsyncApi, fast_settings_base: Settings
) -> None:
    user, password = await admin_client.new_user("staff")
    for _ in range(fast_settings_base.login_max_failures - 1):
        assert await login(app_client, user["username"], "nope") == 401
    assert await login(app_client, user["username"], password) == 200
    for _ in range(fast_settings_base.login_max_failures - 1):
        assert await login(app_client, user["username"], "nope") == 401
    assert await login(app_client, user["username"], password) == 200
