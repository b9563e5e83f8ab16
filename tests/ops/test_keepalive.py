"""An idle keep-alive connection outlives the client's own idle timeout (httpx: 5 s).

uvicorn closes idle connections after 5 s by default, the same as httpx's pool: a client that
reuses a connection just as the server closes it loses that request ("server disconnected
without sending a response"; seen once in 25,619 requests of a 10-minute soak). Filestore keeps
idle connections `HTTP_KEEPALIVE_SECONDS` (65 s), so the client or load balancer closes first.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from tests.fixtures.live import LiveServer

IDLE_SECONDS = 7  # past uvicorn's default of 5 s, well under HTTP_KEEPALIVE_SECONDS


def _get_health(sock: socket.socket, host: str) -> bytes:
    sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_idle_connection_is_still_open_after_the_clients_keepalive(s3_server: LiveServer) -> None:
    url = urlsplit(s3_server.base_url)
    assert url.hostname is not None
    assert url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        assert _get_health(sock, url.netloc).startswith(b"HTTP/1.1 200")
        time.sleep(IDLE_SECONDS)
        # Closed by the server, this would read b"" (EOF) instead of an answer.
        assert _get_health(sock, url.netloc).startswith(b"HTTP/1.1 200")
