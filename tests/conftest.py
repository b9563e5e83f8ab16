"""Session fixtures: a real PostgreSQL, a real S3 server (SeaweedFS) and live Filestore servers.

PostgreSQL is `FILESTORE_TEST_DATABASE_URL` when set (the suite creates its own databases on
that server), else an embedded server in a temp dir. The `server` fixture is parametrised over
both object stores, so every test that takes it runs against S3 and against the local store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import procrastinate
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from filestore import worker as job_worker
from filestore.auth import security
from filestore.db import libpq_url, sqlalchemy_url
from filestore.main import create_app
from filestore.migrate import upgrade
from filestore.settings import Settings
from tests.fixtures.app import (
    ADMIN_PASSWORD,
    AsyncApi,
    attach_state,
    bound_sessionmaker,
    build_app,
    commit_admin,
    fast_settings,
    open_engine,
)
from tests.fixtures.cluster import SeaweedCluster, start_seaweed_cluster
from tests.fixtures.live import (
    Api,
    LiveServer,
    WorkerProcess,
    production_env,
    start_server,
    start_worker,
)
from tests.fixtures.servers import (
    EmbeddedPostgres,
    SeaweedFS,
    s3_env,
    start_embedded_postgres,
    start_seaweedfs,
)

TEST_MAX_FILE_SIZE = 12 * 1024 * 1024

# A test that needs any of these runs real server processes: it belongs to the `live` tier.
LIVE_FIXTURES = frozenset(
    {"start_filestore", "seaweed", "seaweed_cluster", "workers", "clamd", "smtp"}
)
# Modules whose tests start processes of their own without those fixtures.
LIVE_MODULES = frozenset({"test_file_storage.py", "test_migrations.py", "test_settings.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the live tier so `pytest -m "not live"` is the fast tier."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & LIVE_FIXTURES or item.path.name in LIVE_MODULES:
            item.add_marker(pytest.mark.live)


class Postgres:
    """Where test databases are made: the embedded server or FILESTORE_TEST_DATABASE_URL's."""

    def __init__(self, admin_url: str, embedded: EmbeddedPostgres | None) -> None:
        self.admin_url = admin_url
        self.embedded = embedded

    def create_database(self, prefix: str = "filestore_test") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        if self.embedded is not None:
            return self.embedded.create_database(name)
        with psycopg.connect(libpq_url(self.admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_url(sqlalchemy_url(self.admin_url)).set(database=name)
        return url.render_as_string(hide_password=False)

    def migrated_database(self, prefix: str = "filestore_test") -> str:
        url = self.create_database(prefix)
        upgrade(url)
        return url


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    external = os.environ.get("FILESTORE_TEST_DATABASE_URL")
    if external:
        yield Postgres(external, None)
        return
    embedded = start_embedded_postgres(tmp_path_factory.mktemp("pg") / "data")
    try:
        yield Postgres(embedded.url, embedded)
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    s3 = start_seaweedfs(tmp_path_factory.mktemp("seaweed"))
    try:
        yield s3
    finally:
        s3.stop()


@pytest.fixture(scope="session")
def seaweed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedCluster]:
    """Master, three volume servers (replication 001), filer and S3 gateway; tests that kill
    a volume server restart it before they end."""
    cluster = start_seaweed_cluster(tmp_path_factory.mktemp("seaweed-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


ServerFactory = Callable[..., LiveServer]


@pytest.fixture(scope="session")
def start_filestore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start extra servers with any settings; all are stopped at the end of the session."""
    started: list[LiveServer] = []

    def factory(env: dict[str, str], *, wait_healthy: bool = True) -> LiveServer:
        server = start_server(tmp_path_factory.mktemp("filestore"), env, wait_healthy=wait_healthy)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session", params=["s3", "local"])
def server(
    request: pytest.FixtureRequest,
    postgres: Postgres,
    seaweed: SeaweedFS,
    start_filestore: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> LiveServer:
    """A production-mode server (external DB, real secrets) on S3 or on the local store."""
    env = production_env(postgres.create_database(f"filestore_{request.param}"))
    env["MAX_FILE_SIZE"] = str(TEST_MAX_FILE_SIZE)
    if request.param == "s3":
        env.update(s3_env(seaweed))
    else:
        env["FILESTORE_DATA_DIR"] = str(tmp_path_factory.mktemp("local-store"))
    return start_filestore(env)


@pytest.fixture(scope="session")
def s3_server(postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory) -> LiveServer:
    """One production-mode server on S3, for tests that need S3 specifically."""
    env = production_env(postgres.create_database("filestore_s3only"))
    env["MAX_FILE_SIZE"] = str(TEST_MAX_FILE_SIZE)
    env.update(s3_env(seaweed))
    return start_filestore(env)


class Workers:
    """`filestore worker` processes started by tests; whatever is still running at the end of
    the session is stopped."""

    def __init__(self) -> None:
        self.started: list[WorkerProcess] = []

    def start(self, server: LiveServer, *, concurrency: int = 2) -> WorkerProcess:
        worker = start_worker(server, concurrency=concurrency)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture(scope="session")
def workers() -> Iterator[Workers]:
    registry = Workers()
    yield registry
    registry.stop_all()


IMPORT_MAX_FILE_SIZE = 32 * 1024 * 1024


@pytest.fixture(scope="session")
def import_server(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory, workers: Workers
) -> LiveServer:
    """A production-mode server on S3 (own database, no in-process worker) with one
    `filestore worker` process running its background jobs."""
    env = production_env(postgres.create_database("filestore_imports"))
    env["MAX_FILE_SIZE"] = str(IMPORT_MAX_FILE_SIZE)
    env["FILESTORE_IN_PROCESS_WORKER"] = "false"
    env.update(s3_env(seaweed))
    server = start_filestore(env)
    workers.start(server)
    return server


@pytest.fixture
def admin(server: LiveServer) -> Api:
    return server.admin()


@pytest.fixture
def customer_id(admin: Api) -> int:
    """A fresh customer for this test."""
    return int(admin.new_customer()["id"])


@pytest.fixture
def staff(server: LiveServer, admin: Api) -> Api:
    return admin.user_api("staff")


@pytest.fixture
def customer_api(admin: Api, customer_id: int) -> Api:
    """A customer user logged in for `customer_id`."""
    return admin.user_api("customer", customer_id)


# -- the fast tier (tests/fixtures/app.py) ------------------------------------------------------


@pytest.fixture(scope="session")
def fast_database_url(postgres: Postgres) -> str:
    """One migrated database for the whole fast tier; tests never commit to it."""
    return postgres.migrated_database("filestore_fast")


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its smallest cost inside the test process, as Django's test settings do
    with their fast hasher: the hashes are still argon2id, made and verified by the same code,
    and carry their own parameters, so a live server verifies them too. The production cost is
    checked on the real function in tests/auth/test_security.py."""
    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "password_hasher", lambda: cheap)
        yield


@pytest.fixture(scope="session")
def fast_settings_base(
    fast_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return fast_settings(fast_database_url, tmp_path_factory.mktemp("fast-store"))


@pytest.fixture(scope="session")
async def fast_engine(
    fast_database_url: str, fast_settings_base: Settings
) -> AsyncIterator[AsyncEngine]:
    engine = open_engine(fast_database_url)
    await commit_admin(fast_settings_base, engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def fast_queue(fast_database_url: str) -> AsyncIterator[procrastinate.App]:
    """The process's one procrastinate app (blueprints can be bound once per process)."""
    with job_worker.queue_on(fast_database_url) as queue:
        await queue.open_async()
        yield queue
        await queue.close_async()


@pytest.fixture
async def db_connection(fast_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The test's connection, inside a transaction rolled back at the end."""
    async with fast_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
async def db_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session in the test's transaction, for service-level tests."""
    async with bound_sessionmaker(db_connection)() as session:
        yield session


@pytest.fixture(scope="session")
def fast_app(fast_settings_base: Settings) -> FastAPI:
    """The fast tier's app, built once; `app_client` gives it each test's resources."""
    return create_app(fast_settings_base)


@pytest.fixture
async def app_client(
    fast_app: FastAPI,
    db_connection: AsyncConnection,
    fast_engine: AsyncEngine,
    fast_queue: procrastinate.App,
    fast_database_url: str,
    fast_settings_base: Settings,
) -> AsyncIterator[AsyncApi]:
    """An anonymous client on the app, every request inside the test's transaction."""
    app = fast_app
    attach_state(
        app,
        fast_settings_base,
        database_url=fast_database_url,
        engine=fast_engine,
        sessionmaker=bound_sessionmaker(db_connection),
        queue=fast_queue,
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://fast.test") as client:
        yield AsyncApi(client)


@pytest.fixture(scope="session")
async def fast_admin_token(
    fast_engine: AsyncEngine,
    fast_queue: procrastinate.App,
    fast_database_url: str,
    fast_settings_base: Settings,
) -> str:
    """One login for the whole fast tier (committed: hashing once, not once per test)."""
    app = build_app(
        fast_settings_base,
        database_url=fast_database_url,
        engine=fast_engine,
        sessionmaker=async_sessionmaker(fast_engine, expire_on_commit=False, autoflush=False),
        queue=fast_queue,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fast.test") as client:
        api = await AsyncApi(client).login(fast_settings_base.admin_username, ADMIN_PASSWORD)
    assert api.token is not None
    return api.token


@pytest.fixture
async def admin_client(app_client: AsyncApi, fast_admin_token: str) -> AsyncApi:
    return AsyncApi(app_client.client, fast_admin_token)


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
