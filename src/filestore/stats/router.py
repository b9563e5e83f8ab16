"""`GET /stats/overview` (staff and admins): the console's Overview screen."""

from __future__ import annotations

from fastapi import APIRouter, Query

from filestore.deps import SessionDep, StaffUser
from filestore.errors import ALWAYS, error_responses
from filestore.stats import service
from filestore.stats.schemas import Overview

router = APIRouter(
    prefix="/stats", tags=["stats"], responses=error_responses(401, 403, 422, *ALWAYS)
)


@router.get("/overview", response_model=Overview)
async def overview(
    session: SessionDep,
    _: StaffUser,
    days: int = Query(default=30, ge=1, le=366, description="Calendar days, today included (UTC)"),
) -> Overview:
    """Storage per bucket, the customers with the most bytes uploaded in the window, uploads per
    day with the rejected ones by reason, and CSV imports per day with rows and run times."""
    return await service.overview(session, days=days)
