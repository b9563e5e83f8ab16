"""Customers through the ASGI app in one rolled-back transaction (fast tier)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.customers.models import Customer
from tests.fixtures.app import AsyncApi


async def test_created_customer_is_listed_and_readable(admin_client: AsyncApi) -> None:
    customer = await admin_client.new_customer(full_name="Ada Lovelace", city="London")
    got = await admin_client.get(f"/customers/{customer['id']}")
    assert got.status_code == 200
    assert got.json()["full_name"] == "Ada Lovelace"


async def test_each_test_starts_from_an_empty_customer_table(db_session: AsyncSession) -> None:
    assert await db_session.scalar(select(func.count()).select_from(Customer)) == 0
