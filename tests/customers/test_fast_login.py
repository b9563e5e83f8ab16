"""A customer's login on demand: `POST /customers/{id}/password-reset` creates the login of a
customer that has none (imported or created without a password), once, and gives the link to
choose its password (fast tier, in-process app)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth.models import User
from tests.fixtures.app import AsyncApi


def strong() -> str:
    return "Pw-" + secrets.token_urlsafe(12)


async def logins_of(db_session: AsyncSession, customer_id: int) -> list[User]:
    stmt = select(User).where(User.customer_id == customer_id)
    return list((await db_session.execute(stmt)).scalars())


async def test_a_customer_without_a_login_gets_one_and_can_log_in(
    app_client: AsyncApi, admin_client: AsyncApi, db_session: AsyncSession
) -> None:
    customer = await admin_client.new_customer(full_name="Lazy Login")
    assert await logins_of(db_session, customer["id"]) == []
    # Nobody can log in with the e-mail before the link is redeemed.
    refused = await app_client.client.post(
        "/auth/login", data={"username": customer["email"], "password": strong()}
    )
    assert refused.status_code == 401

    first = await admin_client.post(f"/customers/{customer['id']}/password-reset")
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    [user] = await logins_of(db_session, customer["id"])
    assert (user.username, user.email, user.role.value) == (
        customer["email"],
        customer["email"],
        "customer",
    )
    assert user.password_reset_required
    assert user.password_hash.startswith("!unusable:")

    # Asked again: the same login, a new link (the first one stops working).
    second = await admin_client.post(f"/customers/{customer['id']}/password-reset")
    assert second.status_code == 200, second.text
    assert [u.id for u in await logins_of(db_session, customer["id"])] == [user.id]

    password = strong()
    redeemed = await app_client.client.post(
        "/auth/reset-password",
        json={"token": second.json()["reset_token"], "new_password": password},
    )
    assert redeemed.status_code == 204, redeemed.text
    me = await (await app_client.login(customer["email"], password)).get("/auth/me")
    assert (me.json()["role"], me.json()["customer_id"]) == ("customer", customer["id"])
    stale = await app_client.client.post(
        "/auth/reset-password",
        json={"token": first.json()["reset_token"], "new_password": strong()},
    )
    assert stale.status_code == 400


async def test_an_existing_login_is_the_one_reset(
    admin_client: AsyncApi, db_session: AsyncSession
) -> None:
    customer = await admin_client.new_customer()
    user, _ = await admin_client.new_user("customer", customer["id"])
    response = await admin_client.post(f"/customers/{customer['id']}/password-reset")
    assert response.status_code == 200, response.text
    assert [u.id for u in await logins_of(db_session, customer["id"])] == [user["id"]]


async def test_an_email_that_is_another_users_login_is_409_not_a_second_account(
    admin_client: AsyncApi, db_session: AsyncSession
) -> None:
    email = f"taken-{secrets.token_hex(4)}@example.com"
    staff = await admin_client.post(
        "/users",
        json={
            "username": f"s-{secrets.token_hex(4)}",
            "password": strong(),
            "role": "staff",
            "email": email.upper(),
        },
    )
    assert staff.status_code == 201, staff.text
    customer = await admin_client.new_customer(email=email)
    response = await admin_client.post(f"/customers/{customer['id']}/password-reset")
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "email_in_use"
    assert await logins_of(db_session, customer["id"]) == []


async def test_who_may_ask(admin_client: AsyncApi) -> None:
    customer = await admin_client.new_customer()
    missing = await admin_client.post("/customers/999999999/password-reset")
    assert (missing.status_code, missing.json()["code"]) == (404, "customer_not_found")
    as_customer = await admin_client.user_api("customer", customer["id"])
    refused = await as_customer.post(f"/customers/{customer['id']}/password-reset")
    assert refused.status_code == 403, refused.text
    assert "code" in refused.json()
