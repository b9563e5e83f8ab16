"""Import invites when two runs of one job race: a stale worker whose job was requeued and taken
over by another. Each invited account must get exactly one mail, and its link must work.

The runs are the real runner on a real PostgreSQL, mailing a real SMTP server (aiosmtpd; the
`smtp` fixture puts these tests in the live tier); the only thing the tests steer is timing:
the stale run's mail server (or its file) answers only when the test says so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from filestore import mail
from filestore.auth import reset as reset_service
from filestore.db import create_engine, create_sessionmaker
from filestore.imports import invites
from filestore.imports.records import ImportSource
from filestore.imports.runner import CustomerImport
from filestore.jobs import service as jobs_service
from filestore.jobs.models import BackgroundJob, JobStatus, JobType
from filestore.requests import NO_CLIENT
from filestore.settings import Settings
from tests.auth.support import SmtpSink, start_smtp, strong_password, token_in
from tests.conftest import Postgres
from tests.imports.support import tag

INVITED = 5


@dataclass
class Env:
    database_url: str
    settings: Settings
    mailer: invites.Mailer


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    server = start_smtp()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def database_url(postgres: Postgres) -> str:
    return postgres.migrated_database("filestore_invites")


@asynccontextmanager
async def make_env(database_url: str, smtp: SmtpSink, **overrides: Any) -> AsyncIterator[Env]:
    settings = Settings.model_validate(
        {
            "database_url": database_url,
            "jwt_secret_key": "test-" + "x" * 40,
            "public_base_url": "http://files.example.test",
            **{key.lower(): value for key, value in smtp.env().items()},
            **overrides,
        }
    )
    engine = create_engine(settings, database_url)
    try:
        yield Env(database_url, settings, invites.Mailer(create_sessionmaker(engine), settings))
    finally:
        await engine.dispose()


@pytest.fixture
async def env(database_url: str, smtp: SmtpSink) -> AsyncIterator[Env]:
    async with make_env(database_url, smtp) as made:
        yield made


def csv_source(content: bytes, import_gate: asyncio.Event | None = None) -> ImportSource:
    """The file from memory. With `import_gate`, the import pass (not the first pass) waits
    for it: a worker stalled in the middle of its run."""

    async def open_from(offset: int) -> AsyncIterator[bytes]:
        if offset > 0 and import_gate is not None:
            await import_gate.wait()
        yield content[offset:]

    return ImportSource(size=len(content), open=open_from)


async def new_job(env: Env) -> uuid.UUID:
    async with env.mailer.sessionmaker() as session:
        job = await jobs_service.create(
            session,
            job_type=JobType.csv_import,
            params={"import_type": "customers", "validation_rules": {"send_invites": True}},
            created_by=None,
        )
        await session.commit()
        return job.id


def runner(env: Env, job_id: uuid.UUID, source: ImportSource) -> CustomerImport:
    return CustomerImport(
        database_url=env.database_url, job_id=job_id, source=source, mailer=env.mailer
    )


def invitees() -> tuple[list[str], bytes]:
    t = tag()
    emails = [f"inv{i}-{t}@example.com" for i in range(INVITED)]
    rows = "".join(f"Invited {i},{email}\n" for i, email in enumerate(emails))
    return emails, f"full_name,email\n{rows}".encode()


class SlowMailServer:
    """Holds the first `send_many` call (the stale run's first batch of mails) until released;
    every call still goes to the real SMTP server."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sending = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0
        real = mail.send_many

        async def send_many(settings: Settings, mails: Sequence[mail.Mail]) -> list[str | None]:
            self.calls += 1
            if self.calls == 1:
                self.sending.set()
                await self.release.wait()
            return await real(settings, mails)

        monkeypatch.setattr(mail, "send_many", send_many)


async def wait_for_mails(smtp: SmtpSink, emails: list[str], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(smtp.to(e)) for e in emails) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def assert_imported_and_invited_once(
    env: Env, smtp: SmtpSink, job_id: uuid.UUID, emails: list[str], results: Sequence[str]
) -> None:
    """The stale run stopped, the other one completed the job with every row counted once,
    and each account got exactly one mail, whose link sets its password."""
    assert list(results) == ["superseded", JobStatus.completed.value]
    job = await job_row(env, job_id)
    assert job["status"] is JobStatus.completed
    assert job["counts"] == (INVITED, INVITED, INVITED, 0)
    assert (job["result"]["invites_sent"], job["result"]["invites_failed"]) == (INVITED, 0)
    for email in emails:
        received = smtp.to(email)
        assert len(received) == 1, f"{email} got {len(received)} mails"
        async with env.mailer.sessionmaker() as session:
            token = token_in(received[0])
            user = await reset_service.reset_password(
                session, token=token, new_password=strong_password(), client=NO_CLIENT
            )
            await session.commit()
        assert user.email == email


async def job_row(env: Env, job_id: uuid.UUID) -> dict[str, Any]:
    async with env.mailer.sessionmaker() as session:
        job = await session.get(BackgroundJob, job_id)
        assert job is not None
        return {
            "status": job.status,
            "counts": (job.total_rows, job.processed_rows, job.successful_rows, job.skipped_rows),
            "result": job.result,
        }


class TestRacingRuns:
    async def test_a_stale_run_mailing_while_another_takes_over(
        self, env: Env, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(invites, "INVITE_BATCH", 2)
        slow = SlowMailServer(monkeypatch)
        emails, content = invitees()
        job_id = await new_job(env)

        stale = asyncio.create_task(runner(env, job_id, csv_source(content)).run())
        await asyncio.wait_for(slow.sending.wait(), 30)
        # The stale run is mailing its first batch when its job is requeued and claimed again.
        fresh = asyncio.create_task(runner(env, job_id, csv_source(content)).run())
        await wait_for_mails(smtp, emails, INVITED - 2, timeout=5)
        slow.release.set()
        results = await asyncio.wait_for(asyncio.gather(stale, fresh), 60)
        await assert_imported_and_invited_once(env, smtp, job_id, emails, results)

    async def test_a_stale_run_waking_up_while_another_works_writes_nothing(
        self, env: Env, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        emails, content = invitees()
        job_id = await new_job(env)
        stalled = asyncio.Event()
        stale = asyncio.create_task(runner(env, job_id, csv_source(content, stalled)).run())
        # The stale run claims the job, plans it and stalls on its first read of the rows.
        for _ in range(200):
            if (await job_row(env, job_id))["counts"][0] is not None:
                break
            await asyncio.sleep(0.05)

        # Another run takes the job over, imports every row and is mailing when the stale one
        # wakes up and tries to write its batch.
        slow = SlowMailServer(monkeypatch)
        fresh = asyncio.create_task(runner(env, job_id, csv_source(content)).run())
        await asyncio.wait_for(slow.sending.wait(), 30)
        stalled.set()
        await asyncio.wait({stale}, timeout=10)
        slow.release.set()
        results = await asyncio.wait_for(asyncio.gather(stale, fresh), 60)
        await assert_imported_and_invited_once(env, smtp, job_id, emails, results)

    async def test_a_run_never_waits_on_the_other_runs_row_locks(
        self, database_url: str, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Every statement is bounded (DB_STATEMENT_TIMEOUT_SECONDS, here 1 s). The stale run
        # holds the locks of its batch for 3 s while it mails; the run that took over has sent
        # the rest by then and must neither wait on those locks (a statement over the bound: the
        # job would fail) nor finish without them: it looks again until the batch is committed.
        bound = 1.0
        monkeypatch.setattr(invites, "INVITE_BATCH", 2)
        monkeypatch.setattr(invites, "LOCKED_POLL_SECONDS", 0.05)
        async with make_env(database_url, smtp, db_statement_timeout_seconds=bound) as env:
            slow = SlowMailServer(monkeypatch)
            emails, content = invitees()
            job_id = await new_job(env)
            stale = asyncio.create_task(runner(env, job_id, csv_source(content)).run())
            await asyncio.wait_for(slow.sending.wait(), 30)
            fresh = asyncio.create_task(runner(env, job_id, csv_source(content)).run())
            await wait_for_mails(smtp, emails, INVITED - 2, timeout=10)
            assert sum(len(smtp.to(e)) for e in emails) == INVITED - 2
            await asyncio.sleep(3 * bound)
            assert not fresh.done()  # still looking, not failed on a lock wait
            slow.release.set()
            results = await asyncio.wait_for(asyncio.gather(stale, fresh), 60)
            await assert_imported_and_invited_once(env, smtp, job_id, emails, results)
