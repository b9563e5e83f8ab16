"""First accounts: the dev-mode admin and demo customer, or an admin from ADMIN_PASSWORD."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from filestore.auth import service as auth_service
from filestore.auth.models import Role
from filestore.auth.schemas import UserCreate
from filestore.customers import service as customers_service
from filestore.customers.schemas import CustomerCreate
from filestore.settings import DEFAULT_ADMIN_PASSWORD, Settings

log = structlog.get_logger(__name__)

DEMO_CUSTOMER = CustomerCreate(
    full_name="Demo Customer", email="demo.customer@example.com", city="Anytown", country="USA"
)


async def bootstrap_accounts(settings: Settings, maker: async_sessionmaker[AsyncSession]) -> None:
    """Create the first admin when none exists.

    Embedded dev mode: `admin`/`admin123` (or ADMIN_PASSWORD) plus a demo customer, so the seed's
    Quick Start (`customer_id=1`) works as written. Otherwise only when ADMIN_PASSWORD is set.
    """
    password = settings.admin_password
    if password is None and settings.embedded_mode:
        password = DEFAULT_ADMIN_PASSWORD
    if password is None:
        return
    async with maker() as session:
        await auth_service.lock_admins(session)
        if not await auth_service.admin_exists(session):
            # The password rules apply, except to embedded dev mode's known `admin123` (warned
            # about below; settings refuse it outside dev mode). A weak ADMIN_PASSWORD stops the
            # start with the rule it breaks.
            await auth_service.create(
                session,
                user_in=UserCreate(
                    username=settings.admin_username, password=password, role=Role.admin
                ),
                check_password=password != DEFAULT_ADMIN_PASSWORD,
            )
            if password == DEFAULT_ADMIN_PASSWORD:
                # Never the password itself, dev mode included: the README says what it is.
                log.warning(
                    "bootstrap.default_admin",
                    username=settings.admin_username,
                    message="Embedded dev mode: admin created with the documented default "
                    "password (README, Quick Start). Never in production.",
                )
            else:
                log.info("bootstrap.admin_created", username=settings.admin_username)
        if settings.embedded_mode and await customers_service.get(session, 1) is None:
            if await customers_service.get_by_email(session, DEMO_CUSTOMER.email) is None:
                customer = await customers_service.create(session, customer_in=DEMO_CUSTOMER)
                log.warning("bootstrap.demo_customer", customer_id=customer.id)
        await session.commit()
