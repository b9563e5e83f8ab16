"""Operations endpoints: `/health` (what is up), `/health/live`, `/health/ready`, `/metrics`."""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from filestore import gauges, metrics
from filestore.deps import StateDep
from filestore.errors import Unauthorized, error_responses
from filestore.files import scan as scanning
from filestore.state import AppState

router = APIRouter(tags=["health"])

WORKER_STALE_SECONDS = 60


class ReadyReport(BaseModel):
    status: str = Field(examples=["healthy"])
    database: str = Field(examples=["ok"], description='"ok" or "unavailable: <reason>"')
    storage: str = Field(examples=["ok"], description='"ok" or "unavailable: <reason>"')


class WorkerReport(BaseModel):
    status: str = Field(description="ok, stale, none, unknown, or down (in-process worker died)")
    last_heartbeat: str | None = None
    in_process: dict[str, Any] | None = Field(
        default=None, description="The worker inside this process: status, crashes, last_error"
    )


class HealthReport(ReadyReport):
    worker: WorkerReport
    scanner: str | None = None


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


def _in_process_worker(state: AppState, report: dict[str, Any]) -> bool:
    """Adds the in-process worker (if this process runs one) to `report`; False if it is down."""
    if state.worker is None:
        return True
    report["in_process"] = state.worker.status()
    if state.worker.alive:
        return True
    report["status"] = "down"
    return False


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
    response_model=HealthReport,
    responses={
        503: {"model": HealthReport, "description": "A part is down"},
        **error_responses(500),
    },
)
async def health(state: StateDep) -> JSONResponse:
    """Health of the service and what it depends on (no token needed). The job workers are
    reported by their freshest heartbeat; a missing `filestore worker` does not make the
    service unhealthy (uploads work without it), but a worker inside this process that died
    does, until it is restarted. With VIRUS_SCAN=clamd the scanner is reported too, and a
    scanner that is down makes the service unhealthy unless VIRUS_SCAN_FAIL_OPEN (uploads would
    be refused otherwise)."""
    settings = state.settings
    scanner: asyncio.Task[str] | None = None
    if settings.virus_scan == "clamd":
        scanner = asyncio.create_task(scanning.health(settings))
    healthy, body = await _checks(state)
    body["worker"] = await _worker(state) if body["database"] == "ok" else {"status": "unknown"}
    if not _in_process_worker(state, body["worker"]):
        healthy = False
        body["status"] = "unhealthy"
    if scanner is not None:
        body["scanner"] = await scanner
        if body["scanner"] != "ok" and not settings.virus_scan_fail_open:
            healthy = False
            body["status"] = "unhealthy"
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/health/live", responses=error_responses(500))
async def live() -> dict[str, str]:
    """Liveness for orchestrators: the process answers."""
    return {"status": "alive"}


@router.get(
    "/health/ready",
    response_model=ReadyReport,
    responses={503: {"model": ReadyReport, "description": "Not ready"}, **error_responses(500)},
)
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
