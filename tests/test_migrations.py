"""Migrations: the seed's `alembic upgrade` commands, `filestore migrate`, and model parity."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, pool, text

from filestore.db import Base, libpq_url, sqlalchemy_url
from filestore.migrate import alembic_config
from filestore.models import load_all_models
from tests.conftest import Postgres, repo_root
from tests.fixtures.live import clean_environ

SEED_REVISION = "20240723_create_file_storage"
TABLES = {"users", "customers", "tickets", "file_uploads"}


def run(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    """Run a command from the repo root with only DATABASE_URL set, as the seed's docs do."""
    env = clean_environ()
    env["DATABASE_URL"] = database_url
    result = subprocess.run(
        args, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def engine_for(url: str) -> Engine:
    return create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)


def tables_and_revision(url: str) -> tuple[set[str], str | None]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            revision = None
            if "alembic_version" in tables:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return tables, revision
    finally:
        engine.dispose()


@pytest.fixture
def fresh_db(postgres: Postgres) -> str:
    return postgres.create_database("filestore_migrate")


@pytest.fixture(scope="module")
def migrated_db(postgres: Postgres) -> str:
    return postgres.migrated_database("filestore_parity")


class TestAlembicCommandLine:
    def test_seed_revision_then_head(self, fresh_db: str) -> None:
        run([sys.executable, "-m", "alembic", "upgrade", SEED_REVISION], fresh_db)
        tables, revision = tables_and_revision(fresh_db)
        assert tables >= TABLES
        assert revision == SEED_REVISION

        run([sys.executable, "-m", "alembic", "upgrade", "head"], fresh_db)
        heads = run([sys.executable, "-m", "alembic", "heads"], fresh_db).stdout.split()
        tables, revision = tables_and_revision(fresh_db)
        assert tables >= TABLES
        assert revision is not None
        assert revision in heads

    def test_current_reports_the_revision(self, fresh_db: str) -> None:
        run([sys.executable, "-m", "alembic", "upgrade", SEED_REVISION], fresh_db)
        current = run([sys.executable, "-m", "alembic", "current"], fresh_db)
        assert SEED_REVISION in current.stdout


class TestFilestoreMigrate:
    def test_creates_the_tables(self, fresh_db: str) -> None:
        run([sys.executable, "-m", "filestore", "migrate"], fresh_db)
        tables, revision = tables_and_revision(fresh_db)
        assert tables >= TABLES
        assert revision is not None

    def test_is_idempotent(self, fresh_db: str) -> None:
        run([sys.executable, "-m", "filestore", "migrate"], fresh_db)
        first = tables_and_revision(fresh_db)
        run([sys.executable, "-m", "filestore", "migrate"], fresh_db)
        assert tables_and_revision(fresh_db) == first


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """procrastinate's queue tables come from its own schema file, not from our models."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    return not str(table or "").startswith("procrastinate_")


def differences(url: str) -> list[Any]:
    load_all_models()
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_object": _ours,
                },
            )
            diff: list[Any] = compare_metadata(context, Base.metadata)
            return diff
    finally:
        engine.dispose()


class TestMigrationMatchesModels:
    def test_no_differences(self, migrated_db: str) -> None:
        assert differences(migrated_db) == []

    def test_functional_unique_indexes_exist(self, migrated_db: str) -> None:
        # Autogenerate cannot compare expression indexes; check the case-insensitive ones here.
        engine = engine_for(migrated_db)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'uq_%'")
                ).all()
        finally:
            engine.dispose()
        definitions = {str(name): str(definition) for name, definition in rows}
        assert "lower((email)::text)" in definitions["uq_customers_email_lower"]
        assert "UNIQUE" in definitions["uq_customers_email_lower"]
        assert "lower((email)::text)" in definitions["uq_users_email_lower"]
        assert "UNIQUE" in definitions["uq_file_uploads_bucket_key"]


class TestDowngrade:
    @pytest.fixture
    def upgraded(self, fresh_db: str) -> str:
        command.upgrade(alembic_config(fresh_db), "head")
        return fresh_db

    def test_base_then_head_again(self, upgraded: str) -> None:
        command.downgrade(alembic_config(upgraded), "base")
        tables, revision = tables_and_revision(upgraded)
        assert not tables & TABLES
        assert revision is None
        engine = engine_for(upgraded)
        try:
            with engine.connect() as conn:
                enums = set(
                    conn.execute(text("SELECT typname FROM pg_type WHERE typtype = 'e'")).scalars()
                )
        finally:
            engine.dispose()
        assert not enums & {"user_role", "upload_status"}

        command.upgrade(alembic_config(upgraded), "head")
        tables, revision = tables_and_revision(upgraded)
        assert tables >= TABLES
        assert differences(upgraded) == []


class TestFileExpiryRange:
    """`file_uploads.expires_at` holds only what Python can read back in any time zone."""

    BEFORE = "20261127_scan_status"

    def insert_file(self, conn: psycopg.Connection[Any], expires_at: str | None) -> int:
        row = conn.execute(
            "INSERT INTO file_uploads (filename, bucket, object_key, file_size, mime_type,"
            " file_type, md5, sha256, expires_at) VALUES ('a.csv', 'b', gen_random_uuid()::text,"
            " 1, 'text/csv', 'csv', '', '', %s) RETURNING id",
            (expires_at,),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def test_upgrade_clamps_rows_that_could_not_be_read(self, fresh_db: str) -> None:
        command.upgrade(alembic_config(fresh_db), self.BEFORE)
        with psycopg.connect(libpq_url(fresh_db), autocommit=True) as conn:
            # What the probe stored: 9999-12-31T23:59:59-14:00 is 10000-01-01 13:59:59 UTC.
            too_late = self.insert_file(conn, "9999-12-31T23:59:59-14:00")
            infinity = self.insert_file(conn, "infinity")
            too_early = self.insert_file(conn, "-infinity")
            normal = self.insert_file(conn, "2030-05-01T12:00:00+00:00")
            never = self.insert_file(conn, None)
            with pytest.raises(psycopg.DataError):
                conn.execute(
                    "SELECT expires_at FROM file_uploads WHERE id = %s", (too_late,)
                ).fetchone()

        command.upgrade(alembic_config(fresh_db), "head")
        with psycopg.connect(libpq_url(fresh_db), autocommit=True) as conn:
            # Read back in the zones furthest from UTC both ways: nothing overflows.
            for zone in ("Etc/GMT-14", "Etc/GMT+12"):
                conn.execute(f"SET TIME ZONE '{zone}'")
                rows: dict[int, datetime | None] = dict(
                    conn.execute("SELECT id, expires_at FROM file_uploads").fetchall()
                )
                latest = datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)
                assert rows[too_late] == rows[infinity] == latest
                assert rows[too_early] == datetime(1970, 1, 1, tzinfo=UTC)
                assert rows[normal] == datetime(2030, 5, 1, 12, tzinfo=UTC)
                assert rows[never] is None

            for value in ("9999-01-01T00:00:00+00:00", "infinity", "-infinity", "1969-12-31"):
                with pytest.raises(psycopg.errors.CheckViolation):
                    self.insert_file(conn, value)
