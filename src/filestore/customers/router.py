"""`/customers`: staff create customers; everyone lists what they may see."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from filestore.customers import service as customers_service
from filestore.customers.schemas import CustomerCreate, CustomerOut
from filestore.deps import ClientDep, CurrentUser, IdPath, SessionDep, StaffUser
from filestore.errors import ALWAYS, error_responses
from filestore.schemas import PageOffset, SearchText

router = APIRouter(
    prefix="/customers", tags=["customers"], responses=error_responses(401, 422, *ALWAYS)
)


@router.post(
    "",
    response_model=CustomerOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        403,
        (409, "E-mail already used"),
        (422, "Invalid body, or the password breaks a rule (`code` says which)"),
    ),
)
async def create_customer(
    customer_in: CustomerCreate, session: SessionDep, staff: StaffUser, client: ClientDep
) -> Any:
    """Create a customer (admin, staff); with `password`, also its login (the e-mail)."""
    return await customers_service.create(
        session, customer_in=customer_in, actor_id=staff.id, client=client
    )


@router.get("", response_model=list[CustomerOut])
async def list_customers(
    session: SessionDep,
    user: CurrentUser,
    email: Annotated[SearchText | None, Query()] = None,
    q: Annotated[
        SearchText | None, Query(description="Part of the name or e-mail (case-insensitive)")
    ] = None,
    limit: int = Query(default=50, ge=1, le=500),
    offset: Annotated[PageOffset, Query()] = 0,
) -> Any:
    """Customers visible to you, filtered by e-mail (exact) or by part of the name or e-mail
    (`q`, ordered by name), both case-insensitive."""
    return await customers_service.list_visible(
        session, user=user, email=email, limit=limit, offset=offset, q=q
    )


@router.get("/{customer_id}", response_model=CustomerOut, responses=error_responses(404))
async def get_customer(customer_id: IdPath, session: SessionDep, user: CurrentUser) -> Any:
    """One customer."""
    return await customers_service.get_visible(session, customer_id=customer_id, user=user)
