"""Who sent a request: the client's address and user agent, as services record them.

A request concept, not a domain's: the audit log stores it, login sessions keep it, and the
CLI and background jobs pass `NO_CLIENT`. Services receive it as a plain value, never the
`Request` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

USER_AGENT_MAX = 300


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from; empty for the CLI and background jobs."""

    ip: str | None = None
    user_agent: str | None = None


NO_CLIENT = ClientInfo()


def client_of(request: Request) -> ClientInfo:
    """The caller's address (uvicorn resolves X-Forwarded-For from trusted proxies) and agent."""
    return ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:USER_AGENT_MAX] or None,
    )
