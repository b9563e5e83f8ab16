"""`/tickets`: create and list support tickets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from filestore.deps import CurrentUser, IdPath, SessionDep
from filestore.errors import ALWAYS, error_responses
from filestore.schemas import DbId, PageOffset
from filestore.tickets import service as tickets_service
from filestore.tickets.schemas import TicketCreate, TicketOut, TicketStatus

router = APIRouter(
    prefix="/tickets", tags=["tickets"], responses=error_responses(401, 422, *ALWAYS)
)


@router.post(
    "",
    response_model=TicketOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses((404, "Customer not found")),
)
async def create_ticket(ticket_in: TicketCreate, session: SessionDep, user: CurrentUser) -> Any:
    """Open a ticket for a customer (a customer user: for itself)."""
    return await tickets_service.create(session, ticket_in=ticket_in, user=user)


@router.get("", response_model=list[TicketOut])
async def list_tickets(
    session: SessionDep,
    user: CurrentUser,
    customer_id: Annotated[DbId | None, Query()] = None,
    status: TicketStatus | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    offset: Annotated[PageOffset, Query()] = 0,
) -> Any:
    """Tickets visible to you, newest first."""
    return await tickets_service.list_visible(
        session, user=user, customer_id=customer_id, status=status, limit=limit, offset=offset
    )


@router.get("/{ticket_id}", response_model=TicketOut, responses=error_responses(404))
async def get_ticket(ticket_id: IdPath, session: SessionDep, user: CurrentUser) -> Any:
    """One ticket."""
    return await tickets_service.get_visible(session, ticket_id=ticket_id, user=user)
