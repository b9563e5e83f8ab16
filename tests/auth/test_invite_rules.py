"""Import invites die with the account's changes, as reset links do: an account whose role,
customer, active flag or password changed after the import created it is not mailed a link."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from filestore.imports import invites
from tests.auth.support import SmtpSink, tag, token_in
from tests.fixtures.app import AsyncApi, bound_sessionmaker, fast_settings


async def test_an_account_changed_before_its_invite_went_out_gets_none(
    app_client: AsyncApi,
    admin_client: AsyncApi,
    db_connection: AsyncConnection,
    fast_database_url: str,
    smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    customer = await admin_client.new_customer(email=f"kept-{tag()}@example.com")
    moved = await admin_client.new_customer(email=f"moved-{tag()}@example.com")
    kept_user, _ = await admin_client.new_user("customer", customer["id"])
    moved_user, _ = await admin_client.new_user("customer", moved["id"])
    job_id = uuid.uuid4()
    await db_connection.execute(
        text("INSERT INTO background_jobs (id, job_type) VALUES (:id, 'csv_import')"),
        {"id": job_id},
    )
    for user in (kept_user, moved_user):
        await db_connection.execute(
            text("INSERT INTO account_invites (job_id, user_id) VALUES (:job, :user)"),
            {"job": job_id, "user": user["id"]},
        )
    # Before the invites go out, an admin links the second account to another customer.
    other = await admin_client.new_customer()
    patched = await admin_client.patch(
        f"/users/{moved_user['id']}", json={"customer_id": other["id"]}
    )
    assert patched.status_code == 200, patched.text

    smtp_env = smtp.env()
    settings = fast_settings(
        fast_database_url,
        tmp_path,
        smtp_host=smtp_env["SMTP_HOST"],
        smtp_port=int(smtp_env["SMTP_PORT"]),
        smtp_username=smtp_env["SMTP_USERNAME"],
        smtp_password=smtp_env["SMTP_PASSWORD"],
        smtp_starttls=False,
    )
    async with bound_sessionmaker(db_connection)() as session:
        error = await invites.send_batch(
            session, settings, job_id, [kept_user["id"], moved_user["id"]]
        )
        await session.commit()

    assert error is None
    assert smtp.to(moved["email"]) == []
    (message,) = smtp.wait_for(customer["email"])
    redeemed = await app_client.client.post(
        "/auth/reset-password",
        json={"token": token_in(message), "new_password": "Pw-" + uuid.uuid4().hex},
    )
    assert redeemed.status_code == 204, redeemed.text
    errors = await db_connection.execute(
        text("SELECT error FROM account_invites WHERE job_id = :job AND user_id = :user"),
        {"job": job_id, "user": moved_user["id"]},
    )
    assert errors.scalar_one() == "account changed"
