"""`/customers`: staff create customers and send their reset links; everyone lists what they
may see."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from filestore.auth import reset as reset_service
from filestore.auth.schemas import PasswordResetOut
from filestore.customers import service as customers_service
from filestore.customers.schemas import CustomerCreate, CustomerOut
from filestore.deps import ClientDep, CurrentUser, IdPath, SessionDep, SettingsDep, StaffUser
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


@router.post(
    "/{customer_id}/password-reset",
    response_model=PasswordResetOut,
    responses=error_responses(
        403,
        404,
        (409, "The customer's e-mail is another user's login"),
        (503, "The e-mail could not be sent, or the database is unavailable"),
    ),
)
async def issue_customer_password_reset(
    customer_id: IdPath,
    session: SessionDep,
    staff: StaffUser,
    settings: SettingsDep,
    client: ClientDep,
    response: Response,
) -> PasswordResetOut:
    """A single-use link to choose a password for the customer's login (admin, staff); the
    login is created first if the customer has none yet (imported or created without a
    password). With SMTP set up it is e-mailed to the customer and not shown here."""
    response.headers["Cache-Control"] = "no-store"
    customer = await customers_service.get_visible(session, customer_id=customer_id, user=staff)
    user = await customers_service.ensure_login(
        session, customer=customer, actor_id=staff.id, client=client
    )
    issued = await reset_service.issue_for_user(
        session, user_id=user.id, actor=staff, client=client, settings=settings
    )
    # The mail goes out only once its token exists: a failed commit sends no dead link.
    return await reset_service.commit_and_hand_over(session, settings, issued)
