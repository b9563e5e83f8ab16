"""Believing a reverse proxy's X-Forwarded-* headers only when it is one we trust.

uvicorn's own proxy support reads X-Forwarded-Proto and X-Forwarded-For but not
X-Forwarded-Host, so a URL the API hands out (a tus upload's `Location`) would name the
proxy's upstream address. This middleware applies uvicorn's rules (the same class, the same
`FORWARDED_ALLOW_IPS`, default `127.0.0.1,::1`) and also takes the host from X-Forwarded-Host,
all only when the connecting peer is trusted. `filestore serve` turns uvicorn's copy off so
the peer seen here is the real one; under a bare `uvicorn app.main:app` uvicorn rewrites the
peer first, a proxied request then looks untrusted here, and its Host header is kept (safe).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


class ForwardedHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, trusted: str) -> None:
        self._proxy = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            client = scope.get("client")
            if client and client[0] in self._proxy.trusted_hosts:
                scope = _with_forwarded_host(scope)
        await self._proxy(scope, receive, send)  # type: ignore[arg-type]


def _with_forwarded_host(scope: Scope) -> Scope:
    forwarded = None
    for name, value in scope["headers"]:
        if name == b"x-forwarded-host":
            forwarded = value.decode("latin-1").split(",")[0].strip()
            break
    if not forwarded or not _HOST.match(forwarded):
        return scope
    headers = [(n, v) for n, v in scope["headers"] if n != b"host"]
    headers.append((b"host", forwarded.encode("latin-1")))
    return {**scope, "headers": headers}
