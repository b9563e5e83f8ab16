"""`GET /health`: is PostgreSQL reachable, is the object store reachable."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from filestore.deps import StateDep
from filestore.state import AppState

router = APIRouter(tags=["health"])


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


@router.get(
    "/health",
    responses={200: {"description": "All parts are up"}, 503: {"description": "A part is down"}},
)
async def health(state: StateDep) -> JSONResponse:
    """Health of the service and what it depends on (no token needed)."""
    database, storage = await asyncio.gather(_database(state), _storage(state))
    healthy = database == "ok" and storage == "ok"
    body: dict[str, Any] = {
        "status": "healthy" if healthy else "unhealthy",
        "database": database,
        "storage": storage,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)
