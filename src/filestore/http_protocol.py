"""uvicorn's httptools protocol with a response's small writes sent as one.

uvicorn writes a response's status line and headers, then each body chunk, with one
`transport.write` each, and uvloop sends each at once: a small JSON answer leaves in two
TCP segments, costing the server two `send` calls and the client two wake-ups and reads.
Here writes under `COALESCE_BYTES` are held until the event loop's next turn (the end of
the request task's step, which has then written the whole small answer) and sent together.
A larger write first sends what is held, then goes out directly, so streamed downloads are
unchanged. Used by `filestore serve`; the seed's `uvicorn app.main:app` keeps uvicorn's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Writes below this are held for the loop's next turn; headers and a small body fit.
COALESCE_BYTES = 64 * 1024


class CoalescingTransport:
    """Wraps a transport: small writes are gathered and sent once per event-loop turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) >= COALESCE_BYTES:
            self.flush()
            self._transport.write(data)
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def flush(self) -> None:
        """Send what is held (a no-op when nothing is, or the connection is closing)."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        # get_extra_info, is_closing, pause_reading, resume_reading, set_protocol, ...
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` writing through a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(wrapped)
