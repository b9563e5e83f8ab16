"""Who sees which file, and which bucket a file lands in: through the app, one transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.files.models import FileUpload
from tests.fixtures.app import AsyncApi

CSV = b"name,email\nAda,ada@example.com\n"


async def stored(api: AsyncApi, filename: str = "notes.csv", **fields: Any) -> dict[str, object]:
    response = await api.upload(CSV, filename, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


class TestVisibility:
    async def test_a_customer_never_sees_another_customers_file(
        self, admin_client: AsyncApi
    ) -> None:
        ours = (await admin_client.new_customer())["id"]
        theirs = (await admin_client.new_customer())["id"]
        their_file = await stored(admin_client, customer_id=theirs)
        customer = await admin_client.user_api("customer", ours)

        assert (await customer.get(f"/files/{their_file['id']}")).status_code == 404
        listed = await customer.get(f"/files/customer/{theirs}")
        assert listed.status_code in {403, 404} or listed.json() == []
        own = await stored(customer)
        assert (await customer.get(f"/files/{own['id']}")).status_code == 200

    async def test_backups_are_for_admins_only(self, admin_client: AsyncApi) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        backup = await stored(
            admin_client, "nightly.csv", file_type="backup", customer_id=customer_id
        )
        staff = await admin_client.user_api("staff")

        assert (await staff.get(f"/files/{backup['id']}")).status_code == 404
        listed = (await staff.get(f"/files/customer/{customer_id}")).json()
        assert backup["id"] not in [file["id"] for file in listed]
        assert (await admin_client.get(f"/files/{backup['id']}")).status_code == 200

    async def test_an_expired_file_is_gone_for_everyone(
        self, admin_client: AsyncApi, db_session: AsyncSession
    ) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        file = await stored(admin_client, customer_id=customer_id)
        await db_session.execute(
            update(FileUpload)
            .where(FileUpload.id == file["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await db_session.commit()

        assert (await admin_client.get(f"/files/{file['id']}")).status_code == 404
        assert (await admin_client.get(f"/files/customer/{customer_id}")).json() == []


class TestRouting:
    async def test_each_kind_of_file_lands_in_the_seeds_bucket(
        self, admin_client: AsyncApi
    ) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        ticket_id = (await admin_client.new_ticket(customer_id))["id"]
        cases = {
            "customer-uploads": {"customer_id": customer_id},
            "ticket-media": {"customer_id": customer_id, "ticket_id": ticket_id},
            "csv-imports": {"file_type": "csv"},
            "backups": {"file_type": "backup"},
            "temp": {"file_type": "temp"},
        }
        for bucket, fields in cases.items():
            body = await stored(admin_client, **fields)
            assert body["bucket"] == bucket, (fields, body)
