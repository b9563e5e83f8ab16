"""Run the Alembic migrations from code (`filestore migrate`, startup, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic_settings import BaseSettings, SettingsConfigDict

from filestore.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class _MigrationSettings(BaseSettings):
    """The only settings a migration reads. Not `Settings`: it insists on production secrets,
    which migrating never uses (a deploy step may be given nothing but DATABASE_URL)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str | None = None
    filestore_data_dir: Path = Path(".filestore")


def database_url_from_env() -> str:
    """DATABASE_URL, or the embedded dev-mode database (started if needed)."""
    settings = _MigrationSettings()
    if settings.database_url:
        return settings.database_url
    from filestore.embedded import start_embedded_postgres

    data_dir = settings.filestore_data_dir
    return start_embedded_postgres(Settings.model_construct(filestore_data_dir=data_dir).pgdata_dir)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade the database to `revision` (under an advisory lock, see migrations/env.py)."""
    command.upgrade(alembic_config(database_url), revision)
