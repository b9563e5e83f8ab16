"""A lean HTTP/1.1 keep-alive client for the small-request benchmarks.

httpx spends about 1 ms of Python per request; with the client on the same 2 cores as the
server, PostgreSQL and SeaweedFS, that is CPU the server doesn't get, and the client itself
becomes the bottleneck long before the server (`bench/small_requests.py` prints the client's
CPU per request). The S3 baselines are driven by obstore, whose client is Rust; this client is
the like-for-like on the API side, in the spirit of `wrk`: requests are written as prebuilt
bytes on one connection per client loop, responses parsed by httptools (the C parser uvicorn
uses). It speaks only what the benchmarks need: one request at a time per connection,
`Content-Length` or chunked bodies, keep-alive.

Imported as `lean_http` (the scripts run as `python bench/NAME.py`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools


@dataclass
class Response:
    status: int = 0
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False
    keep_alive: bool = False
    parser: Any = None

    # httptools callbacks
    def on_headers_complete(self) -> None:
        # Read here: llhttp forgets it once the message is complete.
        self.keep_alive = bool(self.parser.should_keep_alive())

    def on_body(self, chunk: bytes) -> None:
        self.body += chunk

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    """One keep-alive connection; `request` sends one request and reads its whole answer."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        fixed = {"Host": f"{self.host}:{self.port}", **headers}
        self.fixed_headers = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str | None = None
    ) -> Response:
        reader, writer = await self._connect()
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self.fixed_headers
        if body or method in {"POST", "PUT", "PATCH"}:
            head += f"Content-Length: {len(body)}\r\n".encode()
        if content_type:
            head += f"Content-Type: {content_type}\r\n".encode()
        writer.write(head + b"\r\n" + body)
        response = Response()
        parser = response.parser = httptools.HttpResponseParser(response)
        while not response.complete:
            chunk = await reader.read(65536)
            if not chunk:
                await self.close()
                raise ConnectionError(f"{method} {path}: connection closed mid-response")
            parser.feed_data(chunk)
        response.status = parser.get_status_code()
        if not response.keep_alive:
            await self.close()
        return response

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def multipart(
    field_name: str, filename: str, content: bytes, content_type: str
) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field, and its Content-Type header value."""
    boundary = "benchboundary7d1f0c2a"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"
