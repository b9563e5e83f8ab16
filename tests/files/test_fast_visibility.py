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


class TestListingOwnerCheck:
    """The owner check is part of the listing statement: no owner row means 404."""

    async def test_a_customer_listing_another_customer_gets_404(
        self, admin_client: AsyncApi
    ) -> None:
        ours = (await admin_client.new_customer())["id"]
        theirs = (await admin_client.new_customer())["id"]
        await stored(admin_client, customer_id=theirs)
        customer = await admin_client.user_api("customer", ours)

        refused = await customer.get(f"/files/customer/{theirs}")
        assert refused.status_code == 404
        assert refused.json()["code"] == "customer_not_found"
        own = await stored(customer)
        listed = await customer.get(f"/files/customer/{ours}")
        assert [f["id"] for f in listed.json()] == [own["id"]]

    async def test_a_customer_listing_another_customers_ticket_gets_404(
        self, admin_client: AsyncApi
    ) -> None:
        ours = (await admin_client.new_customer())["id"]
        theirs = (await admin_client.new_customer())["id"]
        their_ticket = (await admin_client.new_ticket(theirs))["id"]
        our_ticket = (await admin_client.new_ticket(ours))["id"]
        await stored(admin_client, customer_id=theirs, ticket_id=their_ticket)
        ours_file = await stored(admin_client, customer_id=ours, ticket_id=our_ticket)
        customer = await admin_client.user_api("customer", ours)

        refused = await customer.get(f"/files/ticket/{their_ticket}")
        assert refused.status_code == 404
        assert refused.json()["code"] == "ticket_not_found"
        listed = (await customer.get(f"/files/ticket/{our_ticket}")).json()
        assert [f["id"] for f in listed] == [ours_file["id"]]

    async def test_missing_owners_are_404_and_an_owner_without_files_an_empty_page(
        self, admin_client: AsyncApi
    ) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        ticket_id = (await admin_client.new_ticket(customer_id))["id"]
        for path, code in (("customer", "customer_not_found"), ("ticket", "ticket_not_found")):
            missing = await admin_client.get(f"/files/{path}/9223372036854775807")
            assert missing.status_code == 404
            assert missing.json() == {"detail": missing.json()["detail"], "code": code}
        assert (await admin_client.get(f"/files/customer/{customer_id}")).json() == []
        assert (await admin_client.get(f"/files/ticket/{ticket_id}")).json() == []

    async def test_staff_ticket_listings_leave_out_backups(self, admin_client: AsyncApi) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        ticket_id = (await admin_client.new_ticket(customer_id))["id"]
        backup = await stored(admin_client, file_type="backup", ticket_id=ticket_id)
        media = await stored(admin_client, customer_id=customer_id, ticket_id=ticket_id)
        staff = await admin_client.user_api("staff")

        staff_ids = [f["id"] for f in (await staff.get(f"/files/ticket/{ticket_id}")).json()]
        admin_ids = [f["id"] for f in (await admin_client.get(f"/files/ticket/{ticket_id}")).json()]
        assert staff_ids == [media["id"]]
        assert admin_ids == [media["id"], backup["id"]]


class TestHugeOffsets:
    """A fuzz once found a 500 at offset 3.7e13 (an INTEGER cast of the offset)."""

    async def test_any_bigint_offset_is_an_empty_page(self, admin_client: AsyncApi) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        await stored(admin_client, customer_id=customer_id)
        for offset in (2**31, 37_000_000_000_000, 2**63 - 1):
            response = await admin_client.get(
                f"/files/customer/{customer_id}", params={"offset": offset, "limit": 500}
            )
            assert response.status_code == 200, (offset, response.text)
            assert response.json() == []

    async def test_an_offset_beyond_bigint_is_422_json(self, admin_client: AsyncApi) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        for offset in (str(2**63), "1e300", "-1"):
            response = await admin_client.get(
                f"/files/customer/{customer_id}", params={"offset": offset}
            )
            assert response.status_code == 422, (offset, response.text)
            assert set(response.json()) == {"detail", "code"}
