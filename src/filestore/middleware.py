"""Pure ASGI guards every request passes: a URL that is UTF-8, a size limit on request bodies
and the security headers every response carries.

Pure ASGI rather than `BaseHTTPMiddleware`, so a streamed upload or download passes through
untouched. The uploads (`POST /files/upload`, tus's `POST /files/tus` and
`PATCH /files/tus/{id}`) are exempt from the body limit: they stream their bodies and enforce
`MAX_FILE_SIZE` (and a tus upload's declared length) themselves.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filestore.errors import send_error_and_close

BODY_TOO_LARGE = "body_too_large"
INVALID_URL = "invalid_url"


class Utf8UrlMiddleware:
    """Answer 400 `invalid_url` to a path or query whose percent-escapes are not UTF-8.

    Starlette decodes them with replacement characters: `?q=%ED%A0%80` (a lone surrogate) would
    quietly become a search for U+FFFD, and `%FF` in a path a different id than the one sent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _utf8(scope):
            detail = "The URL's percent-escapes are not UTF-8"
            await send_error_and_close(send, 400, detail, INVALID_URL)
            return
        await self.app(scope, receive, send)


def _utf8(scope: Scope) -> bool:
    raw_path: bytes = scope.get("raw_path") or b""
    query: bytes = scope.get("query_string") or b""
    try:
        unquote_to_bytes(raw_path.split(b"?", 1)[0]).decode("utf-8")
        unquote_to_bytes(query.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _BodyTooLarge(HTTPException):
    """Unwinds the app once the 413 is sent; whatever the app answers then is dropped."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Request body too large")


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class BodyLimitMiddleware:
    """Answer 413 `body_too_large` to any request body over `max_bytes`.

    A declared `Content-Length` over the limit is refused before a byte is read (and before
    authentication). A body without one (chunked) is counted as it streams; the first chunk
    over the limit stops it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        exempt: frozenset[tuple[str, str]] = frozenset(),
        exempt_prefixes: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt
        # (method, path prefix): resumable uploads' PATCH /files/tus/{id}.
        self.exempt_prefixes = exempt_prefixes

    def _is_exempt(self, method: str, path: str) -> bool:
        if (method, path) in self.exempt:
            return True
        return any(method == m and path.startswith(p) for m, p in self.exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_exempt(scope["method"], _route_path(scope)):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await self._refuse(send)
            return
        await _CountingCall(self, scope, receive, send).run()

    async def _refuse(self, send: Send) -> None:
        detail = f"Request body larger than {self.max_bytes} bytes"
        await send_error_and_close(send, 413, detail, BODY_TOO_LARGE)


class _CountingCall:
    """One request whose body is counted as the app reads it."""

    def __init__(self, limit: BodyLimitMiddleware, scope: Scope, receive: Receive, send: Send):
        self.limit = limit
        self.scope = scope
        self.receive = receive
        self.send = send
        self.received = 0
        self.started = False
        self.refused = False

    async def run(self) -> None:
        try:
            await self.limit.app(self.scope, self._receive, self._send)
        except _BodyTooLarge:
            if not self.refused:
                raise

    async def _receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit.max_bytes:
                if self.started:
                    # Too late for a 413: stop reading, as if the client had gone.
                    return {"type": "http.disconnect"}
                self.refused = True
                await self.limit._refuse(self.send)
                raise _BodyTooLarge()
        return message

    async def _send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class SecurityHeadersMiddleware:
    """`X-Content-Type-Options: nosniff` on every response: a browser must never guess that a
    JSON error or a downloaded file is HTML."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
