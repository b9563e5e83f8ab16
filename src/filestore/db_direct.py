"""Prebuilt Core statements run straight on a pooled connection's psycopg connection.

For the hot reads only (`files.reads`): SQLAlchemy's execution (its compiled-statement cache
lookup, parameter processing, the greenlet hop of its asyncio layer, result processing) cost
about 200 us of CPU per statement here, more than psycopg itself (320 against 123 us for
`GET /files/{id}`'s statement, docs/benchmarks.md). The statement is still built with
SQLAlchemy Core and compiled once, by the engine's own dialect; the connection still comes from
SQLAlchemy's pool, with its checks (`db._PingWhenIdle`, `db.BoundedConnection`'s bounded
waits). What a caller gets differs in three ways: rows are named tuples of the columns'
labels, an enum column is its string, and a `jsonb` column is decoded by psycopg.

SQLAlchemy's `before_cursor_execute` listeners still see each statement (the tests count
round trips with one, and so would a tracing library). A database error is raised as
SQLAlchemy's (`DBAPIError`, `OperationalError`), so `errors.py` maps it as before.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import Jsonb
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ClauseElement


def _bound(value: Any) -> Any:
    """A value as psycopg takes it: an enum as its value, a dict as `jsonb`."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return Jsonb(value)
    return value


class DirectStatement:
    """`statement` compiled once for the dialect of the first connection it runs on; `prepare`
    False: never prepared by psycopg (`db.UNPREPARED`'s reason), None: psycopg's default."""

    def __init__(self, statement: ClauseElement, *, prepare: bool | None = None) -> None:
        self.statement = statement
        self.prepare = prepare
        self._sql: str | None = None
        self._fixed: dict[str, Any] = {}

    def _compile(self, connection: AsyncConnection) -> str:
        compiled = self.statement.compile(dialect=connection.dialect)
        # The values the statement carries itself (`role = 'admin'`, the file type...).
        self._fixed = {
            name: _bound(value) for name, value in compiled.params.items() if value is not None
        }
        self._sql = str(compiled)
        return self._sql

    async def rows(self, connection: AsyncConnection, params: Mapping[str, Any]) -> list[Any]:
        """All rows of the statement with `params` bound, on `connection`'s psycopg
        connection (one round trip)."""
        sql = self._sql or self._compile(connection)
        values = {**self._fixed, **{name: _bound(value) for name, value in params.items()}}
        sync = connection.sync_connection
        assert sync is not None  # an open connection
        if sync.dispatch.before_cursor_execute:
            sync.dispatch.before_cursor_execute(sync, None, sql, values, None, False)
        driver: psycopg.AsyncConnection[Any] = sync.connection.driver_connection  # type: ignore[assignment]
        try:
            cursor = driver.cursor(row_factory=namedtuple_row)
            await cursor.execute(sql, values, prepare=self.prepare)
            return await cursor.fetchall()
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                # Its state is unknown (the server went away, or `BoundedConnection` gave up
                # waiting): it must not go back to the pool.
                with contextlib.suppress(Exception):
                    await connection.invalidate()
            # As SQLAlchemy raises it (without the values: they may carry client addresses).
            raise DBAPIError.instance(
                sql, None, exc, psycopg.Error, hide_parameters=True, dialect=connection.dialect
            ) from exc
