"""Servers of the account tests, each on its own database so lockouts and audit rows of one
group of tests cannot disturb another (or the rest of the suite):

* `plain_server`: production mode, local store, in-process worker, no SMTP;
* `mail_server`: the same with SMTP pointed at a real aiosmtpd server (`smtp`);
* `fast_server`: short lockout window, reset TTL and refresh lifetime, a low per-IP limit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.support import SmtpSink, start_smtp
from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import LiveServer, production_env

FAST_WINDOW_SECONDS = 3
FAST_MAX_LOCK_SECONDS = 12
FAST_IP_MAX_FAILURES = 8
FAST_RESET_TTL_SECONDS = 3
FAST_REFRESH_SECONDS = 3


def accounts_env(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory, name: str
) -> dict[str, str]:
    env = production_env(postgres.create_database(f"filestore_{name}"))
    env["FILESTORE_DATA_DIR"] = str(tmp_path_factory.mktemp(f"{name}-store"))
    env["FILESTORE_IN_PROCESS_WORKER"] = "true"
    env["PUBLIC_BASE_URL"] = "http://files.example.test"
    return env


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    sink = start_smtp()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="session")
def plain_server(
    postgres: Postgres, start_filestore: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> LiveServer:
    return start_filestore(accounts_env(postgres, tmp_path_factory, "accounts"))


@pytest.fixture(scope="session")
def mail_server(
    postgres: Postgres,
    start_filestore: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: SmtpSink,
) -> LiveServer:
    env = accounts_env(postgres, tmp_path_factory, "mail")
    env.update(smtp.env())
    return start_filestore(env)


@pytest.fixture(scope="session")
def fast_server(
    postgres: Postgres, start_filestore: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> LiveServer:
    env = accounts_env(postgres, tmp_path_factory, "fast")
    env.update(
        {
            "LOGIN_FAILURE_WINDOW_SECONDS": str(FAST_WINDOW_SECONDS),
            "LOGIN_LOCKOUT_MAX_SECONDS": str(FAST_MAX_LOCK_SECONDS),
            "LOGIN_IP_MAX_FAILURES": str(FAST_IP_MAX_FAILURES),
            "PASSWORD_RESET_TTL_HOURS": str(FAST_RESET_TTL_SECONDS / 3600),
            "REFRESH_TOKEN_EXPIRE_DAYS": str(FAST_REFRESH_SECONDS / 86400),
        }
    )
    return start_filestore(env)
