"""Alembic migrations; `filestore migrate` and `alembic upgrade head` both run them."""
