"""The last line of defence: an exception no handler claimed becomes a logged 500 JSON answer.

Starlette's own ServerErrorMiddleware answers 500 too, but then re-raises, and uvicorn closes
the connection: a client's next request on that keep-alive connection fails. This middleware
sits outside every other one (`main.create_app` adds it last) and answers without re-raising.
A response that has already started (a download cut midway) cannot be turned into a 500:
then the exception is re-raised and the connection is closed, which is the only honest end.
A client that went away (`ClientDisconnect`) is no error of ours: logged as
`request.client_disconnected`, without a traceback, and nothing is sent.
"""

from __future__ import annotations

import structlog
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filestore.errors import error_body

log = structlog.get_logger(__name__)


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except ClientDisconnect:
            # Nobody is left to answer; the request log counts it as 499.
            log.info(
                "request.client_disconnected", method=scope.get("method"), path=scope.get("path")
            )
        except Exception:
            log.exception(
                "request.unhandled_error", method=scope.get("method"), path=scope.get("path")
            )
            if started:
                raise
            response = JSONResponse(error_body("Internal server error", "internal_error"), 500)
            await response(scope, receive, send)
