"""The engine the app runs on: a failed statement's error (and so any log line that carries it)
never holds the values it was sent, such as a password hash or an e-mail."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator

import psycopg
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from filestore.auth.models import Role, User
from filestore.customers.models import Customer
from filestore.db import create_engine
from filestore.settings import Settings

SECRET_EMAIL = "sk-live-4f9a2c7e@example.com"
SECRET_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0LXNhbHQ$SECRETHASHVALUE"


@pytest.fixture
async def app_connection(
    fast_database_url: str, fast_settings_base: Settings
) -> AsyncIterator[AsyncConnection]:
    """A connection of the engine the app creates, in a transaction rolled back at the end."""
    engine = create_engine(fast_settings_base, fast_database_url)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            yield connection
            await transaction.rollback()
    finally:
        await engine.dispose()


def logged(exc: BaseException) -> str:
    """What `log.exception` writes for it: the traceback with the message."""
    return "".join(traceback.format_exception(exc))


async def test_a_unique_violation_does_not_carry_the_value(app_connection: AsyncConnection) -> None:
    row = {"full_name": "Dup", "email": SECRET_EMAIL}
    await app_connection.execute(insert(Customer).values(**row))

    with pytest.raises(IntegrityError) as caught:
        await app_connection.execute(insert(Customer).values(**row))

    text = logged(caught.value)
    assert "uq_customers_email_lower" in text  # still says what went wrong
    assert SECRET_EMAIL not in text
    assert "sk-live" not in text


async def test_a_failing_row_does_not_carry_the_password_hash(
    app_connection: AsyncConnection,
) -> None:
    with pytest.raises(IntegrityError) as caught:
        await app_connection.execute(
            insert(User).values(username=None, password_hash=SECRET_HASH, role=Role.staff)
        )

    text = logged(caught.value)
    assert "not-null" in text
    assert "SECRETHASHVALUE" not in text
    assert isinstance(caught.value.orig, psycopg.Error)
    assert caught.value.orig.diag.column_name == "username"  # detail kept for the code
