"""Graceful shutdown of an API process: SIGTERM starts a drain, not an exit.

While draining, requests already running (an upload half sent, a download half read) go on;
every new request is answered 503 `shutting_down` with `Connection: close` (a load balancer
takes the process out of rotation: `/health` is 503 too). The process exits once nothing is
in flight, or after `SHUTDOWN_DRAIN_SECONDS` at the latest (what is still running then is cut
off, as uvicorn would). A second SIGINT/SIGTERM exits at once.

`DrainMiddleware` counts the requests in flight and refuses new ones; `DrainingServer` is the
uvicorn server `filestore serve` runs. With `--workers N`, uvicorn's supervisor runs N of them
(`serve_processes`): it forwards SIGTERM to each child, and each child drains on its own.

A signal sent to the whole process group (systemd's default `KillMode=control-group`, Ctrl-C in a
terminal) reaches a child twice, once directly and once forwarded by the supervisor: a second
signal within `SAME_SIGNAL_SECONDS` of the first counts as the same request to stop.
"""

from __future__ import annotations

import signal
import socket
import time
from types import FrameType

import structlog
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.supervisors import multiprocess

from filestore.errors import send_error_and_close

log = structlog.get_logger(__name__)

SHUTTING_DOWN = "shutting_down"
SAME_SIGNAL_SECONDS = 1.0


class _Drain:
    """This process's drain state (a signal is process-wide, so is this)."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0

    def begin(self) -> None:
        self.draining = True


DRAIN = _Drain()


class DrainMiddleware:
    """Counts HTTP requests in flight; while draining, answers new ones 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if DRAIN.draining:
            await _refuse(send)
            return
        DRAIN.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            DRAIN.in_flight -= 1


async def _refuse(send: Send) -> None:
    detail = "The server is shutting down; retry on another instance"
    await send_error_and_close(send, 503, detail, SHUTTING_DOWN, (b"retry-after", b"1"))


class DrainingServer(uvicorn.Server):
    """uvicorn, but the first SIGTERM/SIGINT drains for up to `drain_seconds` before exiting."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.drain_deadline: float | None = None
        self.drain_started: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.drain_started is not None and now - self.drain_started < SAME_SIGNAL_SECONDS:
            return  # the group's signal and the supervisor's copy of it: one request to stop
        if self.drain_deadline is not None or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)  # a second signal, or no drain: stop now
            return
        self.drain_started = now
        self.drain_deadline = now + self.drain_seconds
        DRAIN.begin()
        log.info(
            "server.draining",
            signal=signal.Signals(sig).name,
            in_flight=DRAIN.in_flight,
            drain_seconds=self.drain_seconds,
        )

    async def on_tick(self, counter: int) -> bool:
        deadline = self.drain_deadline
        if deadline is not None and not self.should_exit:
            if DRAIN.in_flight == 0 or time.monotonic() >= deadline:
                log.info("server.drained", still_in_flight=DRAIN.in_flight)
                self.should_exit = True
        return await super().on_tick(counter)


class DrainingProcess(multiprocess.Process):
    """One `--workers N` child: a `DrainingServer` instead of uvicorn's plain `Server`.

    The instance is pickled into the spawned child, `drain_seconds` with it.
    """

    drain_seconds_for_children = 0.0  # set by `serve_processes` in the supervisor

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.drain_seconds = self.drain_seconds_for_children
        super().__init__(config, sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(self.config, drain_seconds=self.drain_seconds)
        return self._server


def serve_processes(config: uvicorn.Config, *, drain_seconds: float) -> None:
    """`filestore serve --workers N`: uvicorn's supervisor, every child a draining server."""
    DrainingProcess.drain_seconds_for_children = drain_seconds
    # uvicorn's supervisor creates (and re-creates, after a crash or SIGHUP) its children through
    # this module-level name, and has no other hook for the server class.
    multiprocess.Process = DrainingProcess  # type: ignore[misc]
    sock = config.bind_socket()
    multiprocess.Multiprocess(config, sockets=[sock]).run()
