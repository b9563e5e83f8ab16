"""Imports every domain's models so that `Base.metadata` knows all tables.

Called by each entry point before its first query (the API's lifespan, the worker, the CLI,
Alembic's `env.py`, tests): the mappers refer to each other's tables by name. `db.py` stays
below the domains and never calls it."""

from __future__ import annotations


def load_all_models() -> None:
    from filestore.audit import models as _audit  # noqa: F401
    from filestore.auth import models as _auth  # noqa: F401
    from filestore.customers import models as _customers  # noqa: F401
    from filestore.files import models as _files  # noqa: F401
    from filestore.files.tus import models as _tus  # noqa: F401
    from filestore.imports import models as _imports  # noqa: F401
    from filestore.jobs import models as _jobs  # noqa: F401
    from filestore.tickets import models as _tickets  # noqa: F401
