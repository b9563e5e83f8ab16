"""`db_direct`: a Core statement run on the pooled connection's psycopg connection behaves, for
its callers and for the pool, as SQLAlchemy's own execution would."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import BigInteger, bindparam, column, event, literal, select, table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from filestore.auth.models import Role
from filestore.db_direct import DirectStatement

USERS = table("users", column("id"), column("role"))


async def test_rows_are_named_with_enums_as_strings_and_values_bound(
    fast_engine: AsyncEngine,
) -> None:
    statement = DirectStatement(
        select(
            USERS.c.id,
            USERS.c.role,
            literal(Role.staff.value).label("fixed"),
            bindparam("details", type_=JSONB).label("details"),
        ).where(USERS.c.role == Role.admin, USERS.c.id >= bindparam("from_id", type_=BigInteger))
    )
    async with fast_engine.connect() as connection:
        rows = await statement.rows(connection, {"from_id": 0, "details": {"a": [1, "b"]}})
    assert rows, "the committed admin"
    assert {row.role for row in rows} == {"admin"}
    assert rows[0].fixed == "staff"
    assert rows[0].details == {"a": [1, "b"]}


async def test_sqlalchemy_listeners_see_the_statement(fast_engine: AsyncEngine) -> None:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(fast_engine.sync_engine, "before_cursor_execute", record)
    try:
        async with fast_engine.connect() as connection:
            await DirectStatement(select(literal(1).label("one"))).rows(connection, {})
    finally:
        event.remove(fast_engine.sync_engine, "before_cursor_execute", record)
    assert len(seen) == 1
    assert seen[0].startswith("SELECT")


async def test_a_bad_value_is_sqlalchemys_error(fast_engine: AsyncEngine) -> None:
    statement = DirectStatement(select(bindparam("n", type_=BigInteger).label("n")))
    async with fast_engine.connect() as connection:
        with pytest.raises(DBAPIError) as raised:
            await statement.rows(connection, {"n": 2**70})  # beyond BIGINT
        assert "out of range" in str(raised.value.orig)
        assert str(2**70) not in str(raised.value)  # the values stay out of the message


async def test_a_connection_that_died_never_goes_back_to_the_pool(
    fast_engine: AsyncEngine,
) -> None:
    statement = DirectStatement(select(literal(1).label("one")))
    async with fast_engine.connect() as victim:
        pid = (await victim.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await victim.commit()
        async with fast_engine.connect() as killer:
            await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError):  # errors.py answers it with a 503
            await statement.rows(victim, {})
        assert victim.invalidated
    async with fast_engine.connect() as fresh:  # the pool hands out a live one
        assert (await statement.rows(fresh, {}))[0].one == 1
