"""Upload bodies that must keep moving: the defence against slow-loris clients.

A client that opens an upload and then sends nothing, or a byte now and then, would hold a
connection (and a multipart upload in the store) for as long as it likes. Every upload body
(the multipart form and tus PATCH) is read through `paced`: no byte for `idle_seconds`, or
fewer than `min_bytes_per_second` on average over a window of `window_seconds`, ends it with
a 408. Averaging over a window, not per read, lets a real slow link (a phone that stalls for
a few seconds in a tunnel and then catches up) through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from filestore.errors import RequestTimeout
from filestore.settings import Settings


class ClientIdle(RequestTimeout):
    code = "client_idle"


class ClientTooSlow(RequestTimeout):
    code = "client_too_slow"


@dataclass(frozen=True)
class Pace:
    idle_seconds: float
    min_bytes_per_second: int
    window_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> Pace:
        return cls(
            idle_seconds=settings.upload_idle_timeout_seconds,
            min_bytes_per_second=settings.upload_min_bytes_per_second,
            window_seconds=settings.upload_rate_window_seconds,
        )


async def paced(body: AsyncIterator[bytes], pace: Pace) -> AsyncIterator[bytes]:
    """`body`'s chunks; raises `ClientIdle` or `ClientTooSlow` (408) for a stalling client."""
    chunks = aiter(body)
    window_start = time.monotonic()
    window_bytes = 0
    while True:
        try:
            async with asyncio.timeout(pace.idle_seconds):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ClientIdle(
                f"No upload data for {pace.idle_seconds:g} s; the upload was stopped"
            ) from None
        window_bytes += len(chunk)
        elapsed = time.monotonic() - window_start
        if elapsed >= pace.window_seconds:
            if window_bytes < pace.min_bytes_per_second * elapsed:
                raise ClientTooSlow(
                    f"The upload was slower than {pace.min_bytes_per_second} bytes/s over "
                    f"{pace.window_seconds:g} s; it was stopped"
                )
            window_start, window_bytes = time.monotonic(), 0
        yield chunk
