"""Live fixtures of the tus tests: one S3 server with room for 30 MiB files, and a proxy in
front of it that cuts connections after a given number of bytes."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import LiveServer, production_env
from tests.fixtures.servers import SeaweedFS, TcpProxy, s3_env

MiB = 1024 * 1024


def random_csv(size: int) -> bytes:
    """`size` bytes that sniff as CSV text but do not compress or repeat in part-sized runs."""
    header = b"id,payload\n"
    body = os.urandom(size).hex().encode()[: size - len(header)]
    return header + body


@pytest.fixture(scope="session")
def tus_env(postgres: Postgres, seaweed: SeaweedFS) -> dict[str, str]:
    env = production_env(postgres.create_database("filestore_tus"))
    env.update(s3_env(seaweed))
    env["MAX_FILE_SIZE"] = str(40 * MiB)
    return env


@pytest.fixture(scope="session")
def tus_server(tus_env: dict[str, str], start_filestore: ServerFactory) -> LiveServer:
    return start_filestore(tus_env)


class CuttingProxy(TcpProxy):
    """A TcpProxy that resets every connection once `arm(n)` more bytes went client → server,
    then accepts new connections again after `pause` seconds."""

    def __init__(self, host: str, port: int, *, pause: float = 0.5) -> None:
        super().__init__(host, port)
        self.pause = pause
        self.cuts = 0
        self._budget: int | None = None
        self._budget_lock = threading.Lock()

    def arm(self, after_bytes: int) -> None:
        with self._budget_lock:
            self._budget = after_bytes

    def spend(self, count: int) -> bool:
        with self._budget_lock:
            if self._budget is None:
                return False
            self._budget -= count
            if self._budget > 0:
                return False
            self._budget = None
        self.cuts += 1
        self.cut()
        threading.Timer(self.pause, self.restore).start()
        return True

    def _pump(self, pair: Any, src: socket.socket, dst: socket.socket) -> None:
        if src is pair.client:
            src = _Counting(src, self)  # type: ignore[assignment]
        super()._pump(pair, src, dst)


class _Counting:
    def __init__(self, sock: socket.socket, proxy: CuttingProxy) -> None:
        self._sock = sock
        self._proxy = proxy

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        if data and self._proxy.spend(len(data)):
            raise OSError("cut by the test")
        return data


@pytest.fixture
def proxy(tus_server: LiveServer) -> Iterator[CuttingProxy]:
    host, port = tus_server.base_url.removeprefix("http://").split(":")
    cutting = CuttingProxy(host, int(port))
    cutting.start()
    try:
        yield cutting
    finally:
        cutting.stop()
