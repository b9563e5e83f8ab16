"""The body limit on a real server (uvicorn, sockets): a token-less login with a huge body is
answered 413 while the client is still sending, and the server goes on serving."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import httpx

from tests.fixtures.live import LiveServer
from tests.fixtures.raw_http import open_post, send_until_answered

MIB = 1024 * 1024


def open_login(server: LiveServer, headers: dict[str, str]) -> socket.socket:
    """A socket with the request line and headers of a JSON login sent, no body yet."""
    return open_post(server, "/auth/login", {"Content-Type": "application/json", **headers})


def read_answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body: dict[str, object] = json.loads(response.read())
    return response.status, body


def test_a_declared_huge_login_is_413_before_its_body(s3_server: LiveServer) -> None:
    started = time.monotonic()
    with open_login(s3_server, {"Content-Length": str(100 * MIB)}) as sock:
        sock.sendall(b'{"username": "')
        status, body = read_answer(sock)

    assert (status, body["code"]) == (413, "body_too_large"), body
    assert time.monotonic() - started < 3, "the server waited for the body"
    assert httpx.get(f"{s3_server.base_url}/health/live", timeout=10).status_code == 200


def test_a_chunked_huge_login_is_413_while_still_sending(s3_server: LiveServer) -> None:
    def chunked() -> Iterator[bytes]:
        block = b" " * (64 * 1024)
        for _ in range(100 * MIB // len(block)):
            yield b"%x\r\n%s\r\n" % (len(block), block)

    with open_login(s3_server, {"Transfer-Encoding": "chunked"}) as sock:
        sent = send_until_answered(sock, chunked())
        status, body = read_answer(sock)

    assert (status, body["code"]) == (413, "body_too_large"), body
    assert sent < 8 * MIB, f"the 413 came only after {sent / MIB:.0f} MiB"
    assert httpx.get(f"{s3_server.base_url}/health/live", timeout=10).status_code == 200
