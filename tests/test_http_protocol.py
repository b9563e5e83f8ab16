"""The coalescing HTTP protocol: a small answer leaves in one write, and every answer (small,
streamed, on a closing connection) still arrives whole and in order through a real uvicorn."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from filestore.http_protocol import (
    COALESCE_BYTES,
    CoalescingHttpToolsProtocol,
    CoalescingTransport,
)


class RecordingTransport:
    """Stands in for the socket's transport: records each write (unit tests of the wrapper)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


async def test_small_writes_of_one_turn_leave_as_one() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 40
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_a_large_write_goes_out_at_once_after_what_is_held() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    chunk = b"x" * COALESCE_BYTES
    transport.write(b"headers")
    transport.write(chunk)
    assert inner.writes == [b"headers", chunk]
    await asyncio.sleep(0)
    assert inner.writes == [b"headers", chunk]


async def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, loop)  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"]
    assert inner.closed

    inner = RecordingTransport()
    transport = CoalescingTransport(inner, loop)  # type: ignore[arg-type]
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == []
    assert inner.aborted
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)


BIG = bytes(range(256)) * 800  # 200 KiB, over COALESCE_BYTES


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"small-", BIG, b"-tail"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def served() -> AsyncIterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=CoalescingHttpToolsProtocol, log_level="error"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_answers_arrive_whole_through_uvicorn(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        for _ in range(3):  # keep-alive: several answers on one connection
            response = await client.get("/small")
            assert response.json() == {"ok": True}
        streamed = await client.get("/stream")
        assert streamed.content == b"small-" + BIG + b"-tail"
        closing = await client.get("/small", headers={"Connection": "close"})
        assert closing.json() == {"ok": True}


async def test_a_raw_socket_reads_one_small_answer_whole(served: str) -> None:
    port = int(served.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'\r\n\r\n{"ok":true}')
