"""Alembic environment: the database is `DATABASE_URL`, or the embedded one in dev mode.

A caller may hand in a URL through `config.attributes["url"]` (that is what `filestore migrate`
does). Upgrades hold a PostgreSQL advisory lock, so N processes starting at once migrate once.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from filestore.db import Base, sqlalchemy_url
from filestore.models import load_all_models

MIGRATION_LOCK_ID = 7_240_723

load_all_models()
target_metadata = Base.metadata
config = context.config


def _database_url() -> str:
    url = config.attributes.get("url")
    if url:
        return str(url)
    from filestore.migrate import database_url_from_env

    return database_url_from_env()


def run_migrations_offline() -> None:
    context.configure(
        url=sqlalchemy_url(_database_url()), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(sqlalchemy_url(_database_url()), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
