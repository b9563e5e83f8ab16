"""What a file listing costs PostgreSQL: one statement (the token's user, the owner check and
the page joined), no transaction of its own, and the listing never prepared (a prepared
statement's generic plan is the big-customer trap of `bench/scale.py`).

Through the app, in the test's transaction: its SAVEPOINT / RELEASE are the fast tier's and
are not counted."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from filestore.auth.security import AccessClaims
from filestore.errors import NotFound
from filestore.files import queries, reads
from filestore.settings import Settings
from tests.fixtures.app import AsyncApi

CSV = b"name,email\nAda,ada@example.com\n"


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL `engine` sends meanwhile, without the fast tier's savepoints."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def customer_with_files(api: AsyncApi, files: int = 3) -> int:
    customer_id: int = (await api.new_customer())["id"]
    for n in range(files):
        response = await api.upload(CSV, f"f{n}.csv", customer_id=customer_id)
        assert response.status_code == 201, response.text
    return customer_id


class TestListingRoundTrips:
    async def test_a_listing_is_one_statement_with_the_token_check(
        self, admin_client: AsyncApi, fast_engine: AsyncEngine
    ) -> None:
        customer_id = await customer_with_files(admin_client)
        with statements(fast_engine) as sent:
            response = await admin_client.get(f"/files/customer/{customer_id}?limit=20")
        assert response.status_code == 200, response.text
        assert len(response.json()) == 3
        assert len(sent) == 1, sent
        assert "FROM users" in sent[0]
        assert "auth_sessions" in sent[0]  # the admin's token carries its login session
        assert "LATERAL" in sent[0]
        assert "customers" in sent[0]
        assert not any(s.strip().upper().startswith(("BEGIN", "SET", "COMMIT")) for s in sent)

    async def test_a_missing_customer_costs_the_same_statement(
        self, admin_client: AsyncApi, fast_engine: AsyncEngine
    ) -> None:
        with statements(fast_engine) as sent:
            response = await admin_client.get("/files/customer/999999999999")
        assert response.status_code == 404
        assert response.json()["code"] == "customer_not_found"
        assert len(sent) == 1, sent

    async def test_a_ticket_listing_is_one_statement_too(
        self, admin_client: AsyncApi, fast_engine: AsyncEngine
    ) -> None:
        customer_id = (await admin_client.new_customer())["id"]
        ticket_id = (await admin_client.new_ticket(customer_id))["id"]
        await admin_client.upload(CSV, "t.csv", customer_id=customer_id, ticket_id=ticket_id)
        with statements(fast_engine) as sent:
            response = await admin_client.get(f"/files/ticket/{ticket_id}")
        assert [f["ticket_id"] for f in response.json()] == [ticket_id]
        assert len(sent) == 1, sent
        assert "LATERAL" in sent[0]
        assert "tickets" in sent[0]


class TestListingIsNeverPrepared:
    """On a pooled connection of its own (the fast tier's requests roll back to a savepoint
    each, and psycopg forgets its counts on a rollback)."""

    async def test_the_listing_is_not_prepared_where_other_statements_are(
        self, fast_engine: AsyncEngine, fast_settings_base: Settings
    ) -> None:
        async with fast_engine.connect() as connection:
            conn = await connection.execution_options(isolation_level="AUTOCOMMIT")
            admin = (
                await conn.execute(
                    text("SELECT id, token_version FROM users WHERE role = 'admin' LIMIT 1")
                )
            ).one()
            claims = AccessClaims(admin.id, admin.token_version, None)
            customer = (await conn.execute(text("SELECT min(id) FROM customers"))).scalar()
            for _ in range(8):  # psycopg prepares a statement at its 6th execution
                # The route's own read (`files.reads`), and a metadata read beside it.
                with contextlib.suppress(NotFound):
                    await reads.read_listing(
                        conn,
                        claims,
                        queries.Owner.customer,
                        customer or 1,
                        settings=fast_settings_base,
                        now=datetime.now(UTC),
                        limit=20,
                        offset=0,
                    )
                with contextlib.suppress(NotFound):
                    await reads.read_visible_row(
                        conn,
                        claims,
                        file_id=1,
                        settings=fast_settings_base,
                        now=datetime.now(UTC),
                    )
            prepared = (await conn.execute(PREPARED)).scalars().all()
        assert any("file_uploads" in s and "LATERAL" not in s for s in prepared), prepared
        assert not any("LATERAL" in s for s in prepared), prepared


PREPARED = text("SELECT statement FROM pg_prepared_statements")


@contextmanager
def explained(connection: AsyncConnection) -> Iterator[None]:
    """Meanwhile, `connection` runs `EXPLAIN (ANALYZE)` of each statement instead (with the
    same values bound), so a statement's rows are its plan's lines."""

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> Any:
        return f"EXPLAIN (ANALYZE) {statement}", parameters

    engine = connection.sync_connection
    assert engine is not None
    event.listen(engine, "before_cursor_execute", explain, retval=True)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", explain)


BIG = 5000  # files of one customer: enough for a sort of all of them to be the worse plan
SMALL_CUSTOMERS = 2000  # with 3 files each


class TestABigCustomersPage:
    """A big customer's first page walks the listing index newest first and stops at the
    page's end. With the caller's rule as one `role = 'admin' OR ...` condition PostgreSQL
    guessed 1 % of the rows, read and sorted them all (`queries._page`)."""

    async def test_the_first_page_reads_the_index_not_every_file(
        self, db_connection: AsyncConnection, fast_settings_base: Settings
    ) -> None:
        admin = (
            await db_connection.execute(
                text("SELECT id, token_version FROM users WHERE role = 'admin' LIMIT 1")
            )
        ).one()
        customer_id = (
            await db_connection.execute(
                text(
                    "INSERT INTO customers (full_name, email) "
                    "VALUES ('Big', 'big@example.com') RETURNING id"
                )
            )
        ).scalar_one()
        await db_connection.execute(
            text(
                "INSERT INTO file_uploads (created_at, filename, bucket, object_key, file_size,"
                " mime_type, file_type, md5, sha256, upload_status, customer_id)"
                " SELECT now() - g * interval '1 minute', 'f' || g, 'customer-uploads',"
                " 'big/' || g, 10, 'text/csv', 'csv', repeat('0', 32), repeat('0', 64),"
                " 'completed', :customer FROM generate_series(1, :n) AS g"
            ),
            {"customer": customer_id, "n": BIG},
        )
        # Many small customers beside it, as on a real system: a customer's average is a few.
        await db_connection.execute(
            text(
                "INSERT INTO customers (full_name, email) SELECT 'Small ' || g,"
                " 'small' || g || '@example.com' FROM generate_series(1, :n) AS g"
            ),
            {"n": SMALL_CUSTOMERS},
        )
        await db_connection.execute(
            text(
                "INSERT INTO file_uploads (filename, bucket, object_key, file_size, mime_type,"
                " file_type, md5, sha256, upload_status, customer_id)"
                " SELECT 's', 'customer-uploads', 'small/' || c.id || '/' || g, 10, 'text/csv',"
                " 'csv', repeat('0', 32), repeat('0', 64), 'completed', c.id"
                " FROM customers AS c, generate_series(1, 3) AS g WHERE c.full_name LIKE 'Small %'"
            )
        )
        await db_connection.execute(text("ANALYZE customers"))
        await db_connection.execute(text("ANALYZE file_uploads"))
        stmt = queries.caller_listing(queries.Owner.customer, after=False, with_session=False)
        params = {
            "owner_id": customer_id,
            "limit": 20,
            "offset": 0,
            "user_id": admin.id,
            "token_version": admin.token_version,
            **queries.caller_params(fast_settings_base, datetime.now(UTC)),
        }
        with explained(db_connection):
            plan = "\n".join((await db_connection.execute(stmt, params)).scalars())
        scan = next(line for line in plan.splitlines() if "on file_uploads" in line)
        assert "Index Scan Backward using ix_file_uploads_customer_listing" in scan, plan
        # The planner knows the owner is big (the old form guessed 1 row of 5,000; on a
        # bigger table that guess chose reading and sorting them all).
        estimated = int(re.search(r"rows=(\d+) width", scan).group(1))  # type: ignore[union-attr]
        assert estimated >= BIG // 10, plan
        rows = (await db_connection.execute(stmt, params)).all()
        assert len(rows) == 20
        assert [row.filename for row in rows[:2]] == ["f1", "f2"]  # newest first
