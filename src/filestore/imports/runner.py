"""Running a customer import: exactly-once in effect, resumable after a crash.

Orchestration only. The run claims its job (`jobs/running.py`); the first time, a first pass
checks the file and counts its rows (`prescan.py`) and the header is mapped to fields
(`rows.py`), and that plan is saved on the job. Then the file is streamed from the job's
checkpoint in batches of records (`records.py`), each parsed and validated (`parsing.py`), its
passwords hashed (`password_hashing.py`) and written together with the job's checkpoint
(`writer.py`). Last come the invites (`invites.py`), then the job's final status. A run that
another one superseded (see `jobs/running.py`) stops at its next write, having written nothing
more.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import psycopg
import structlog

from filestore.db import libpq_url
from filestore.imports import invites, writer
from filestore.imports.parsing import parse_batch
from filestore.imports.password_hashing import hash_passwords
from filestore.imports.prescan import prescan
from filestore.imports.records import MAX_RECORD_BYTES, ImportSource, record_batches
from filestore.imports.rows import (
    ColumnPlan,
    ImportFileError,
    ValidationRules,
    parse_header,
    plan_columns,
)
from filestore.jobs.models import JobStatus
from filestore.jobs.running import JobCancelled, JobProgress, JobSuperseded, RunningJob

log = structlog.get_logger(__name__)

BATCH_ROWS = 5000
PASSWORDS_PER_BATCH = 256
SKIPPED = "skipped"
SUPERSEDED = "superseded"


class CustomerImport:
    """Runs one import job on its own psycopg connection."""

    def __init__(
        self,
        *,
        database_url: str,
        job_id: uuid.UUID,
        source: ImportSource,
        hash_pool: Executor | None = None,
        mailer: invites.Mailer | None = None,
        on_progress: Callable[[JobProgress], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.job_id = job_id
        self.source = source
        self.hash_pool = hash_pool
        self.mailer = mailer
        self.on_progress = on_progress
        # The claim's attempt number, once claimed: `fail_job` uses it so that a crash of this
        # run can never fail a job another run has taken over.
        self.attempt: int | None = None

    async def run(self) -> str:
        """Import from the checkpoint to the end; the job's final status, or `skipped` (not
        runnable) or `superseded` (another run took it over)."""
        async with await psycopg.AsyncConnection.connect(libpq_url(self.database_url)) as conn:
            job = await RunningJob.claim(conn, self.job_id)
            if job is None:
                log.info("import.not_runnable", job_id=str(self.job_id))
                return SKIPPED
            self.attempt = job.attempt
            message: str | None = None
            result: dict[str, Any] = {}
            try:
                try:
                    result = await self._run(job)
                    status = JobStatus.completed
                except ImportFileError as exc:
                    status, message = JobStatus.failed, str(exc)
                except JobCancelled:
                    status = JobStatus.cancelled
                await job.finish(status, message=message, result=result)
            except JobSuperseded:
                log.warning("import.superseded", job_id=str(self.job_id), attempt=job.attempt)
                return SUPERSEDED
            p = job.progress
            log.info(
                "import.finished",
                job_id=str(self.job_id),
                status=status.value,
                message=message,
                successful=p.successful_rows,
                failed=p.failed_rows,
            )
            return status.value

    async def _run(self, job: RunningJob) -> dict[str, Any]:
        rules = ValidationRules.from_params(job.params.get("validation_rules") or {})
        plan = await self._plan(job, rules)
        await writer.prepare(job.conn, rules)
        # With passwords a batch is minutes of hashing: keep it to seconds, so progress moves
        # and a crash loses little work.
        hashing = "password" in plan.field_index and not rules.dry_run
        batches = record_batches(
            self.source.open(job.offset),
            start_offset=job.offset,
            start_line=job.line,
            max_record_bytes=MAX_RECORD_BYTES,
            batch_rows=PASSWORDS_PER_BATCH if hashing else BATCH_ROWS,
        )
        async for batch in batches:
            outcome = parse_batch(batch.records, plan, rules)
            if hashing:
                await hash_passwords(outcome.valid, self.hash_pool)
            await writer.write(
                job, writer.BatchWrite(outcome, batch.end_offset, batch.end_line, rules)
            )
            self._report(job.progress)
        if not rules.send_invites or rules.dry_run:
            return {}
        if self.mailer is None:
            return {"invites_error": "This run cannot send e-mail"}
        return await invites.send(self.mailer, job)

    async def _plan(self, job: RunningJob, rules: ValidationRules) -> ColumnPlan:
        """The column plan: saved on the job by its first run, made now otherwise."""
        if job.has_plan and "plan" in job.params:
            return ColumnPlan.from_json(job.params["plan"])
        scan = await prescan(self.source)
        mapping = job.params.get("mapping_config") or {}
        plan = plan_columns(parse_header(scan.header_text), mapping, rules)
        warnings = list(plan.warnings)
        if plan.unknown_columns:
            warnings.append(f"Columns not imported: {', '.join(plan.unknown_columns)}")
        await job.save_plan(
            total_rows=scan.data_rows,
            params={"plan": plan.to_json()},
            warnings=warnings,
            offset=scan.data_offset,
            line=scan.data_line,
            result={"unknown_columns": plan.unknown_columns},
        )
        self._report(job.progress)
        return plan

    def _report(self, progress: JobProgress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)
