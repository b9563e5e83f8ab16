"""Saved mapping templates: create, list, and resolve the one an import names."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.auth.models import User
from filestore.errors import Conflict, NotFound
from filestore.imports.models import ImportMapping
from filestore.imports.schemas import ImportSpec, MappingTemplateIn

log = structlog.get_logger(__name__)
MAX_LISTED = 1000


async def create(
    session: AsyncSession, *, template: MappingTemplateIn, user: User
) -> ImportMapping:
    """Save a template; 409 when the name is taken (names are unique, as written)."""
    row = ImportMapping(name=template.name, mapping=template.mapping_config, created_by=user.id)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"A mapping template named {template.name!r} already exists",
            code="mapping_template_exists",
        ) from exc
    await session.refresh(row)
    log.info("import.mapping_saved", template_id=row.id, user_id=user.id)
    return row


async def list_all(session: AsyncSession) -> Sequence[ImportMapping]:
    stmt = select(ImportMapping).order_by(ImportMapping.name).limit(MAX_LISTED)
    return (await session.execute(stmt)).scalars().all()


async def effective_mapping(session: AsyncSession, spec: ImportSpec) -> dict[str, str]:
    """The named template's mapping with the request's own entries on top (404 when the
    template does not exist)."""
    if spec.mapping_template is None:
        return dict(spec.mapping_config)
    stmt = select(ImportMapping).where(ImportMapping.name == spec.mapping_template)
    template = (await session.execute(stmt)).scalar_one_or_none()
    if template is None:
        raise NotFound(
            f"No mapping template named {spec.mapping_template!r}",
            code="mapping_template_not_found",
        )
    return {**template.mapping, **spec.mapping_config}
