"""Operations endpoints: `/health` (what is up), `/health/live`, `/health/ready`, `/metrics`."""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from filestore import gauges, metrics
from filestore.deps import StateDep
from filestore.errors import Unauthorized
from filestore.files import scan as scanning
from filestore.state import AppState

router = APIRouter(tags=["health"])

WORKER_STALE_SECONDS = 60


async def _database(state: AppState) -> str:
    try:
        async with asyncio.timeout(state.settings.db_connect_timeout_seconds + 1):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


async def _storage(state: AppState) -> str:
    try:
        await state.storage.ping()
    except Exception as exc:
        return f"unavailable: {str(exc)[:120]}"
    return "ok"


async def _worker(state: AppState) -> dict[str, Any]:
    """The freshest job-worker heartbeat (any worker, any machine)."""
    try:
        async with asyncio.timeout(state.settings.db_connect_timeout_seconds + 1):
            async with state.engine.connect() as conn:
                last = (
                    await conn.execute(
                        text("SELECT max(last_heartbeat) FROM procrastinate_workers")
                    )
                ).scalar()
    except Exception:
        return {"status": "unknown", "last_heartbeat": None}
    if last is None:
        return {"status": "none", "last_heartbeat": None}
    age = (datetime.now(UTC) - last).total_seconds()
    return {
        "status": "ok" if age < WORKER_STALE_SECONDS else "stale",
        "last_heartbeat": last.isoformat(),
    }


async def _checks(state: AppState) -> tuple[bool, dict[str, Any]]:
    database, storage = await asyncio.gather(_database(state), _storage(state))
    healthy = database == "ok" and storage == "ok"
    return healthy, {
        "status": "healthy" if healthy else "unhealthy",
        "database": database,
        "storage": storage,
    }


@router.get(
    "/health",
    responses={200: {"description": "All parts are up"}, 503: {"description": "A part is down"}},
)
async def health(state: StateDep) -> JSONResponse:
    """Health of the service and what it depends on (no token needed). The job worker is
    reported but does not make the service unhealthy: uploads work without it. With
    VIRUS_SCAN=clamd the scanner is reported too, and a scanner that is down makes the service
    unhealthy unless VIRUS_SCAN_FAIL_OPEN (uploads would be refused otherwise)."""
    settings = state.settings
    scanner: asyncio.Task[str] | None = None
    if settings.virus_scan == "clamd":
        scanner = asyncio.create_task(scanning.health(settings))
    healthy, body = await _checks(state)
    body["worker"] = await _worker(state) if body["database"] == "ok" else {"status": "unknown"}
    if scanner is not None:
        body["scanner"] = await scanner
        if body["scanner"] != "ok" and not settings.virus_scan_fail_open:
            healthy = False
            body["status"] = "unhealthy"
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/health/live")
async def live() -> dict[str, str]:
    """Liveness for orchestrators: the process answers."""
    return {"status": "alive"}


@router.get("/health/ready", responses={503: {"description": "Not ready"}})
async def ready(state: StateDep) -> JSONResponse:
    """Readiness for orchestrators: PostgreSQL and the object store answer."""
    healthy, body = await _checks(state)
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, state: StateDep) -> Response:
    """Prometheus text format; guarded by METRICS_TOKEN when it is set."""
    token = state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("A valid METRICS_TOKEN bearer token is required")
    async with state.sessionmaker() as session:
        await gauges.refresh(session)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
