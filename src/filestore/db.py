"""SQLAlchemy base (named constraints, timestamps), URL normalisation and the async engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq, waiting
from sqlalchemy import DateTime, Engine, MetaData, event, func
from sqlalchemy.engine import Dialect, ExceptionContext, ExecutionContext
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

from filestore.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


def sqlalchemy_url(url: str) -> str:
    """Any PostgreSQL URL (`postgres://`, `postgresql://`, `+asyncpg`) as a psycopg 3 URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"DATABASE_URL is not a URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base not in {"postgres", "postgresql"}:
        raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://...)")
    return f"postgresql+psycopg://{rest}"


def libpq_url(url: str) -> str:
    """The same database as a plain libpq URI, for psycopg and procrastinate."""
    return "postgresql://" + sqlalchemy_url(url).partition("://")[2]


def _without_row_values(context: ExceptionContext) -> None:
    """Keep the values of a failed statement out of its error, and so out of every log line.

    `hide_parameters` drops SQLAlchemy's `[parameters: ...]`; PostgreSQL's DETAIL repeats them
    ("Failing row contains (..., <password hash>, ...)", "Key (email)=(...)"), so the message is
    cut to the primary line. The constraint and SQLSTATE stay on `orig.diag` for the code.
    """
    original = context.original_exception
    diag = getattr(original, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary or not getattr(diag, "message_detail", None):
        return
    original.args = (primary,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args:
        name = f"{type(original).__module__}.{type(original).__name__}"
        wrapped.args = (f"({name}) {primary}",)


class BoundedConnection(psycopg.AsyncConnection[Any]):
    """A psycopg connection whose every wait for PostgreSQL is bounded.

    A server that is frozen (SIGSTOP, a hung host, a stalled network path) keeps its sockets
    open, so nothing errors: without a bound a query, the pool's pre-ping or a commit waits
    forever, and cancelling the task makes psycopg spend 10 s more trying to cancel the query.
    Past `answer_timeout` seconds without an answer the connection is closed (its state is
    unknown) and `OperationalError` raised: the request gets its 503 and the pool drops the
    connection. A server-side `statement_timeout` cannot do this: a frozen server runs no timer.
    """

    answer_timeout: ClassVar[float] = 10.0

    async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        bound = self.answer_timeout if timeout is None else timeout
        try:
            socket = self.pgconn.socket
            return await waiting.wait_async(gen, socket, interval=interval, timeout=bound)
        except pg_errors._WaitTimeout as exc:
            self.pgconn.finish()
            raise psycopg.OperationalError(f"PostgreSQL did not answer within {bound:g} s") from exc
        except asyncio.CancelledError:
            # psycopg would ask the server to cancel the query and wait up to 10 s for that;
            # a frozen server never answers, so the connection is closed instead.
            if self.pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
                self.pgconn.finish()
            raise


def bounded_connection_class(answer_timeout: float) -> type[BoundedConnection]:
    """`BoundedConnection` with its bound set (one class per engine's setting)."""
    return type("BoundedConnection", (BoundedConnection,), {"answer_timeout": answer_timeout})


# A pooled connection idle this long is pinged before use; a busy one is not.
IDLE_PING_SECONDS = 5.0


class _PingWhenIdle:
    """Pool events that replace `pool_pre_ping`: a connection back from the pool is checked
    with a `SELECT 1` only if it sat unused for IDLE_PING_SECONDS (the database may have
    restarted, or a firewall dropped it meanwhile). Under load connections come back within
    milliseconds, so requests do not pay a round trip each. A connection that dies while in
    use fails its request; SQLAlchemy then invalidates the whole pool, so the next ones
    reconnect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def checkin(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(self, dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        if not self.dialect._do_ping_w_event(dbapi_connection):
            # Most likely the server restarted: every pooled connection is stale.
            raise InvalidatePoolError()


# Execution options of a statement that must never be prepared: `stmt.execution_options(
# **UNPREPARED)`. psycopg prepares a statement after 5 executions on a connection, and
# PostgreSQL then may plan it once for all parameters (a generic plan); a statement whose best
# plan depends on its values (a listing of a big customer or of a small one) runs unprepared
# and is planned for its values each time. No round trip is added (unlike `SET LOCAL
# plan_cache_mode`, which also needs a transaction).
UNPREPARED_OPTION = "filestore_unprepared"
UNPREPARED: dict[str, Any] = {UNPREPARED_OPTION: True}


def _execute_unprepared(
    cursor: Any, statement: str, parameters: Any, context: ExecutionContext
) -> bool:
    """`do_execute` hook: run a statement marked UNPREPARED with psycopg's preparation off.
    Returns False (SQLAlchemy executes as usual) for every other statement."""
    if not context.execution_options.get(UNPREPARED_OPTION):
        return False
    connection = context.root_connection.connection.driver_connection
    assert connection is not None  # a checked-out connection
    saved = connection.prepare_threshold
    connection.prepare_threshold = None
    try:
        cursor.execute(statement, parameters)
    finally:
        connection.prepare_threshold = saved
    return True


# On every engine (the tests' too): it only acts on statements that ask for it.
event.listen(Engine, "do_execute", _execute_unprepared)


def create_engine(settings: Settings, url: str) -> AsyncEngine:
    connection_class = bounded_connection_class(settings.db_statement_timeout_seconds)
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_connect_timeout_seconds + 2,
        connect_args={
            "connect_timeout": max(1, round(settings.db_connect_timeout_seconds)),
            "async_creator_fn": connection_class.connect,
        },
        # A failed statement's error (logged with its traceback) must not carry its parameters:
        # they include password hashes.
        hide_parameters=True,
    )
    event.listen(engine.sync_engine, "handle_error", _without_row_values)
    pinger = _PingWhenIdle(engine.dialect)
    event.listen(engine.sync_engine, "checkin", pinger.checkin)
    event.listen(engine.sync_engine, "checkout", pinger.checkout)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`. The process's entry point must have called
    `filestore.models.load_all_models()` first: the mappers refer to each other's tables."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """`engine` whose statements each commit on their own (no BEGIN, no COMMIT): only for
    routes that read, where every statement sees committed data anyway. Same pool."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on `autocommit_engine(engine)`."""
    return async_sessionmaker(autocommit_engine(engine), expire_on_commit=False, autoflush=False)


async def session_scope(
    maker: async_sessionmaker[AsyncSession],
) -> AsyncGenerator[AsyncSession, None]:
    """One session per unit of work: commit on success, roll back on any error."""
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


@asynccontextmanager
async def side_transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A transaction of its own on the same engine, committed at the end of the block even when
    the caller's transaction later rolls back: for what must survive a refused request (failed
    login counters, their audit events, a revoked token family)."""
    async with AsyncSession(bind=session.bind, expire_on_commit=False) as side, side.begin():
        yield side
