"""No password, hash or secret in a log line: the first-run bootstrap (dev mode included) and
the errors of failed statements, whose parameters carry password hashes."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from filestore import bootstrap, db
from filestore.auth.models import Role, User
from filestore.settings import DEFAULT_ADMIN_PASSWORD, Settings
from tests.fixtures.app import bound_sessionmaker
from tests.fixtures.logs import capture_logs, rendered


class TestBootstrap:
    @pytest.mark.parametrize(
        "admin_password",
        [None, "Bootstrap-" + secrets.token_urlsafe(12)],
        ids=["dev-mode-default", "ADMIN_PASSWORD"],
    )
    async def test_the_first_admin_is_logged_without_its_password(
        self,
        db_connection: AsyncConnection,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        admin_password: str | None,
    ) -> None:
        # A new installation, inside the test's rolled-back transaction.
        await db_connection.execute(text("DELETE FROM users"))
        settings = Settings(
            _env_file=None,
            database_url=None,  # embedded dev mode
            filestore_data_dir=tmp_path,
            admin_password=admin_password,
        )
        with capture_logs(monkeypatch) as entries:
            await bootstrap.bootstrap_accounts(settings, bound_sessionmaker(db_connection))
        expected = (
            "bootstrap.default_admin" if admin_password is None else "bootstrap.admin_created"
        )
        assert expected in [e["event"] for e in entries]
        logged = rendered(entries)
        assert (admin_password or DEFAULT_ADMIN_PASSWORD) not in logged
        created = await db_connection.execute(
            text("SELECT count(*) FROM users WHERE role = 'admin'")
        )
        assert created.scalar_one() == 1


async def test_a_failed_statement_does_not_carry_its_parameters(
    fast_database_url: str, fast_settings_base: Settings
) -> None:
    """What the unhandled-error handler logs is the error with its traceback."""
    engine = db.create_engine(fast_settings_base, fast_database_url)
    password_hash = "$argon2id$v=19$m=19456,t=2,p=1$" + secrets.token_urlsafe(16)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as failed:
                await connection.execute(
                    insert(User).values(
                        username="x" * 500, password_hash=password_hash, role=Role.staff
                    )
                )
    finally:
        await engine.dispose()
    assert "value too long" in str(failed.value)
    assert password_hash not in str(failed.value)
