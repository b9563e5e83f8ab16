"""Virus scanning with clamd: a small asyncio client for its INSTREAM and PING commands.

An upload opens one INSTREAM session before its first byte is stored and feeds it every chunk
it hands to the object store (a tee, not a second pass). Nothing is buffered on our side: each
chunk goes straight into the socket, and when clamd falls behind the upload waits for it, so
memory stays bounded by the kernel's socket buffer. After the object is complete the verdict
is read:

* `stream: OK` -> clean;
* `stream: <signature> FOUND` -> infected, except `Heuristics.Limits.Exceeded.*` (clamd's
  `AlertExceedsMax`), which means clamd skipped part of the file: not scanned;
* anything else (`INSTREAM size limit exceeded. ERROR`, other errors, a closed connection, a
  timeout) -> not scanned. Never clean.

The protocol (clamd(8)): `zINSTREAM\\0`, then chunks each prefixed by its length as a 4-byte
big-endian integer, then a zero-length chunk; clamd answers one NUL-terminated line. Past its
`StreamMaxLength` clamd answers at once and closes; our next send then fails, and the answer is
still readable from the socket, so the log says why.

Plain non-blocking sockets with the loop's `sock_*` calls rather than asyncio streams: a stream
transport drops unread input when a write fails, and that input is clamd's reason.

The policy lives here too (`VirusScan`, a byte sink of the upload): a virus refuses the file
(422 `virus_found`); no verdict refuses it (503 `scanner_unavailable`) unless
VIRUS_SCAN_FAIL_OPEN, which stores it flagged `unscanned`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from filestore.errors import ServiceUnavailable, Unprocessable
from filestore.files.models import ScanStatus
from filestore.settings import Settings

log = structlog.get_logger(__name__)

MAX_REPLY_BYTES = 4096
# clamd sits next to the API: a connection that takes longer than this is not coming.
CONNECT_TIMEOUT_SECONDS = 5.0
HEALTH_TIMEOUT_SECONDS = 5.0
_END_OF_STREAM = struct.pack(">I", 0)
_LIMITS_EXCEEDED = "Heuristics.Limits.Exceeded."


class VirusFound(Unprocessable):
    code = "virus_found"


class ScannerUnavailable(ServiceUnavailable):
    code = "scanner_unavailable"


class ClamdError(Exception):
    """clamd could not be reached, or broke off the conversation."""


class _NoAnswer(ConnectionError):
    """clamd closed the connection without a reply."""


@dataclass(frozen=True)
class Verdict:
    """clamd's answer for one stream; `reason` says why a file was not scanned."""

    clean: bool = False
    signature: str | None = None
    reason: str | None = None

    @property
    def infected(self) -> bool:
        return self.signature is not None


def parse_reply(reply: str) -> Verdict:
    """Read one clamd reply line (without its NUL); only `OK` is clean."""
    text = reply.strip()
    body = text.removeprefix("stream:").strip()
    if body == "OK":
        return Verdict(clean=True)
    if body.endswith(" FOUND"):
        signature = body.removesuffix(" FOUND").strip()
        if signature.startswith(_LIMITS_EXCEEDED):
            return Verdict(reason=f"clamd stopped scanning: {signature}")
        if signature:
            return Verdict(signature=signature)
    return Verdict(reason=f"clamd answered {text[:200]!r}" if text else "clamd answered nothing")


@dataclass(frozen=True)
class ClamdClient:
    """Where clamd listens (a unix socket, else host and port) and how long to wait for it."""

    host: str
    port: int
    socket_path: Path | None
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ClamdClient:
        return cls(
            host=settings.clamd_host,
            port=settings.clamd_port,
            socket_path=settings.clamd_socket,
            timeout=settings.clamd_timeout_seconds,
        )

    @property
    def address(self) -> str:
        return f"unix:{self.socket_path}" if self.socket_path else f"{self.host}:{self.port}"

    async def _connect(self, command: bytes, timeout: float) -> socket.socket:
        """A connected non-blocking socket on which `command` has been sent."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            if self.socket_path is not None:
                targets: list[tuple[socket.AddressFamily, str | tuple[Any, ...]]] = [
                    (socket.AF_UNIX, str(self.socket_path))
                ]
            else:
                infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
                targets = [(family, address) for family, _, _, _, address in infos]
            error: OSError = ConnectionRefusedError()
            for family, address in targets:
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, address)
                    await loop.sock_sendall(sock, command)
                except OSError as exc:
                    sock.close()
                    error = exc
                    continue
                except BaseException:
                    sock.close()
                    raise
                return sock
            raise error

    async def ping(self, *, timeout: float | None = None) -> None:
        """`zPING`; raises ClamdError unless clamd answers PONG in time."""
        timeout = timeout or self.timeout
        try:
            sock = await self._connect(b"zPING\0", min(timeout, CONNECT_TIMEOUT_SECONDS))
        except (OSError, TimeoutError) as exc:
            raise ClamdError(_describe(exc)) from exc
        try:
            async with asyncio.timeout(timeout):
                reply = await _read_reply(sock)
        except (OSError, TimeoutError) as exc:
            raise ClamdError(_describe(exc)) from exc
        finally:
            sock.close()
        if reply != "PONG":
            raise ClamdError(f"clamd answered {reply[:100]!r} to PING")

    async def instream(self) -> InstreamScan:
        """Open an INSTREAM session; raises ClamdError if clamd cannot be reached in time."""
        try:
            sock = await self._connect(b"zINSTREAM\0", min(self.timeout, CONNECT_TIMEOUT_SECONDS))
        except (OSError, TimeoutError) as exc:
            raise ClamdError(_describe(exc)) from exc
        return InstreamScan(sock, timeout=self.timeout)


class InstreamScan:
    """One INSTREAM session. `feed` never raises: a failure is kept in `failure`, further
    chunks are dropped, and the verdict is then "not scanned"; the caller decides whether that
    aborts the upload (fail closed) or not (fail open)."""

    def __init__(self, sock: socket.socket, *, timeout: float) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self.failure: str | None = None
        self.sent = 0

    async def feed(self, data: memoryview | bytes) -> None:
        # An empty chunk would end the stream: skip it.
        if self.failure is not None or not data:
            return
        header = struct.pack(">I", len(data))
        try:
            # The common case: one non-blocking sendmsg takes the header and the chunk. Only a
            # full socket buffer (clamd behind) makes us wait, at most `timeout` per chunk.
            try:
                sent = self._sock.sendmsg([header, data])
            except BlockingIOError:
                sent = 0
            if sent < len(header):
                await self._send(header[sent:])
                await self._send(data)
            elif sent - len(header) < len(data):
                await self._send(memoryview(data)[sent - len(header) :])
        except (OSError, TimeoutError) as exc:
            self._fail(exc)
            return
        self.sent += len(data)

    async def _send(self, data: memoryview | bytes) -> None:
        async with asyncio.timeout(self._timeout):
            await self._loop.sock_sendall(self._sock, data)

    async def verdict(self) -> Verdict:
        """End the stream and read clamd's answer; never raises for a clamd problem."""
        if self.failure is None:
            try:
                async with asyncio.timeout(self._timeout):
                    await self._send(_END_OF_STREAM)
                    return parse_reply(await _read_reply(self._sock))
            except (OSError, TimeoutError) as exc:
                self._fail(exc)
        return Verdict(reason=self.failure)

    def close(self) -> None:
        self._sock.close()

    def _fail(self, exc: BaseException) -> None:
        """Remember why the stream failed: clamd's own answer if it sent one, else the error."""
        reply = b""
        with contextlib.suppress(OSError):
            reply = self._sock.recv(MAX_REPLY_BYTES)
        text = reply.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.failure = (parse_reply(text).reason if text else None) or _describe(exc)
        self._sock.close()


class VirusScan:
    """The scan policy as a byte sink: every chunk goes to clamd, and `status` says what the
    stored file's `scan_status` is. Raises VirusFound, or ScannerUnavailable when clamd gives
    no verdict and we fail closed (as soon as it gives up, so the stored upload is aborted)."""

    def __init__(self, settings: Settings, *, filename: str, user_id: int) -> None:
        self._settings = settings
        self._session: InstreamScan | None = None
        self._filename = filename
        self._user_id = user_id
        self.size = 0
        self.status = ScanStatus.disabled

    @classmethod
    async def start(cls, settings: Settings, *, filename: str, user_id: int) -> VirusScan:
        """Open the INSTREAM session (VIRUS_SCAN=clamd) before the first byte is stored."""
        scan = cls(settings, filename=filename, user_id=user_id)
        client = client_for(settings)
        if client is None:
            return scan
        scan.status = ScanStatus.unscanned  # until clamd says clean
        try:
            scan._session = await client.instream()
        except ClamdError as exc:
            scan._not_scanned(str(exc))
        return scan

    async def write(self, chunk: memoryview) -> None:
        self.size += len(chunk)
        session = self._session
        if session is None:
            return
        await session.feed(chunk)
        if session.failure is not None and not self._settings.virus_scan_fail_open:
            self._not_scanned(session.failure)

    async def finish(self) -> None:
        session = self._session
        if session is None:
            return
        try:
            verdict = await session.verdict()
        finally:
            self.abort()
        if verdict.infected:
            log.warning(
                "file.virus_found",
                signature=verdict.signature,
                filename=self._filename,
                size=self.size,
                user_id=self._user_id,
            )
            raise VirusFound(f"The file is infected ({verdict.signature}); it was not stored")
        if verdict.clean:
            self.status = ScanStatus.clean
        else:
            self._not_scanned(verdict.reason or "no verdict")

    def abort(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _not_scanned(self, reason: str) -> None:
        """clamd could not scan the file: refuse it (503), or keep it flagged `unscanned`."""
        fail_open = self._settings.virus_scan_fail_open
        clamd = ClamdClient.from_settings(self._settings).address
        log.warning(
            "file.scan_failed", reason=reason, fail_open=fail_open, size=self.size, clamd=clamd
        )
        if not fail_open:
            raise ScannerUnavailable(
                f"The file could not be virus-scanned, so it was not stored ({reason}); "
                "try again later"
            )
        self.status = ScanStatus.unscanned


async def _read_reply(sock: socket.socket) -> str:
    """One NUL-terminated reply (up to MAX_REPLY_BYTES)."""
    loop = asyncio.get_running_loop()
    reply = b""
    while b"\0" not in reply:
        data = await loop.sock_recv(sock, MAX_REPLY_BYTES)
        if not data:
            if reply:
                break
            raise _NoAnswer("clamd closed the connection without an answer")
        reply += data
        if len(reply) > MAX_REPLY_BYTES:
            break
    return reply.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "clamd did not answer in time"
    if isinstance(exc, _NoAnswer):
        return str(exc)
    # The exception's name only: its text may hold internal addresses, and this reaches clients.
    return f"clamd connection failed ({type(exc).__name__})"


def client_for(settings: Settings) -> ClamdClient | None:
    """The clamd client when VIRUS_SCAN=clamd, else None."""
    return ClamdClient.from_settings(settings) if settings.virus_scan == "clamd" else None


async def health(settings: Settings) -> str:
    """`ok`, or `unavailable: <why>` (for /health)."""
    client = ClamdClient.from_settings(settings)
    try:
        await client.ping(timeout=min(client.timeout, HEALTH_TIMEOUT_SECONDS))
    except ClamdError as exc:
        return f"unavailable: {exc}"
    return "ok"
