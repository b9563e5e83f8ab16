"""The audit log line of an event is written once its transaction committed: an action that
rolled back never shows up in the log as done."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from filestore.audit import service as audit
from filestore.audit.service import Action, Who
from filestore.requests import ClientInfo
from tests.fixtures.app import bound_sessionmaker
from tests.fixtures.logs import capture_logs

WHO = Who(ClientInfo(ip="198.51.100.9"), actor_id=1, target_user_id=4242)


@pytest.fixture
async def session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with bound_sessionmaker(db_connection)() as session:
        yield session


def audit_lines(entries: list[MutableMapping[str, Any]]) -> list[tuple[Any, Any]]:
    return [
        (e["event"], e.get("target_user_id"))
        for e in entries
        if str(e["event"]).startswith("audit.")
    ]


class TestAuditLogFollowsTheCommit:
    async def test_a_rolled_back_event_is_not_logged(
        self, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with capture_logs(monkeypatch) as entries:
            await audit.record(session, Action.user_deactivated, WHO)
            await session.flush()
            await session.rollback()
        assert audit_lines(entries) == []

    async def test_a_committed_event_is_logged_after_the_commit(
        self, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with capture_logs(monkeypatch) as entries:
            await audit.record(session, Action.user_deactivated, WHO)
            await session.flush()
            assert audit_lines(entries) == []
            await session.commit()
        assert audit_lines(entries) == [("audit.user.deactivated", 4242)]
        assert entries[-1]["client_ip"] == "198.51.100.9"

    async def test_an_event_in_a_rolled_back_savepoint_is_not_logged(
        self, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with capture_logs(monkeypatch) as entries:
            savepoint = await session.begin_nested()
            await audit.record(session, Action.role_changed, WHO)
            await session.flush()
            await savepoint.rollback()
            async with session.begin_nested():  # a savepoint that commits is not the end
                await audit.record(session, Action.user_reactivated, WHO)
            assert audit_lines(entries) == []
            await session.commit()
        assert audit_lines(entries) == [("audit.user.reactivated", 4242)]
