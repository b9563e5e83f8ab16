"""Tickets: create, fetch, list, with the customer-isolation rule applied in every query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth.models import Role, User
from filestore.auth.principal import Actor
from filestore.customers import service as customers_service
from filestore.errors import NotFound, Unprocessable
from filestore.tickets.models import Ticket
from filestore.tickets.schemas import TicketCreate


async def get(session: AsyncSession, ticket_id: int) -> Ticket | None:
    return await session.get(Ticket, ticket_id)


async def get_visible(session: AsyncSession, *, ticket_id: int, user: Actor) -> Ticket:
    """The ticket if `user` may see it; 404 otherwise (never reveal that it exists)."""
    ticket = await get(session, ticket_id)
    if ticket is None or not user.may_see_customer(ticket.customer_id):
        raise NotFound(f"Ticket {ticket_id} not found", code="ticket_not_found")
    return ticket


def visible_id_to(role: ColumnElement[Any], customer_id: ColumnElement[Any]) -> Select[int]:
    """The id of ticket `:owner_id` if the caller may see it, else no row: the rule of
    `get_visible` as a statement, for a caller known only inside the statement that joins it
    (the `role` and `customer_id` columns of the token's user row, `files.queries`)."""
    return select(Ticket.id).where(
        Ticket.id == bindparam("owner_id", type_=BigInteger),
        or_(role != Role.customer, Ticket.customer_id == customer_id),
    )


async def create(session: AsyncSession, *, ticket_in: TicketCreate, user: User) -> Ticket:
    customer_id = ticket_in.customer_id
    if user.role is Role.customer:
        customer_id = customer_id or user.customer_id
    if customer_id is None:
        raise Unprocessable("customer_id is required", code="customer_required")
    await customers_service.get_visible(session, customer_id=customer_id, user=user)
    ticket = Ticket(customer_id=customer_id, subject=ticket_in.subject, status=ticket_in.status)
    session.add(ticket)
    await session.flush()
    return ticket


async def list_visible(
    session: AsyncSession,
    *,
    user: User,
    customer_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> list[Ticket]:
    stmt = (
        select(Ticket)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if user.role is Role.customer:
        stmt = stmt.where(Ticket.customer_id == user.customer_id)
    if customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    if status:
        stmt = stmt.where(Ticket.status == status)
    return list((await session.execute(stmt)).scalars())
