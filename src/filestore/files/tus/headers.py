"""`Tus-Resumable` on every response under `/files/tus` (tus asks for it on all but OPTIONS),
including the ones the app's error handlers and authentication write."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from filestore.files.tus.protocol import TUS_VERSION

PREFIX = "/files/tus"


class TusResumableHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"tus-resumable" for name, _ in headers):
                    headers.append((b"tus-resumable", TUS_VERSION.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)
