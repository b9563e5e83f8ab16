"""Running a customer import: exactly-once in effect, resumable after a crash.

Orchestration only. The run claims its job (`jobs/running.py`); the first time, the file's
kind is told from its first bytes: a CSV's encoding and dialect are decided and a first pass
checks and counts it (`csv_source.py`), a workbook's header is read (`xlsx_source.py`); the
header is mapped to fields (`rows.py`), and that plan, with how the file is read, is saved on
the job. Then the file is streamed from the job's checkpoint in batches of records or
worksheet rows, each parsed and validated (`parsing.py`, in a thread, while the batch before
it is being written), its passwords hashed (`password_hashing.py`) and written together with
the job's checkpoint (`writer.py`), one batch at a time, in order. Last
come the invites (`invites.py`), then the job's final status. A run that another one
superseded (see `jobs/running.py`) stops at its next write, having written nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any

import psycopg
import structlog

from filestore.db import libpq_url
from filestore.imports import csv_source, invites, writer, xlsx_source
from filestore.imports.decoding import PREFIX_BYTES
from filestore.imports.parsing import BatchOutcome, parse_batch, validate_sheet_rows
from filestore.imports.password_hashing import hash_passwords
from filestore.imports.records import ImportSource
from filestore.imports.rows import (
    ColumnPlan,
    ImportFileError,
    ValidationRules,
    parse_header,
    plan_columns,
)
from filestore.imports.xlsx_zip import OLE2_MAGIC, ZIP_MAGIC
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
        plan, source = await self._plan(job, rules)
        await writer.prepare(job.conn, rules)
        # With passwords a batch is minutes of hashing: keep it to seconds, so progress moves
        # and a crash loses little work.
        hashing = "password" in plan.field_index and not rules.dry_run
        batch_rows = PASSWORDS_PER_BATCH if hashing else BATCH_ROWS
        # Batch N is written (PostgreSQL's work, one transaction) while batch N+1 is read and
        # parsed (the worker's, in a thread): the two took turns before. Writes stay one at a
        # time and in order, so checkpoints are exactly as before.
        writing: asyncio.Task[None] | None = None
        try:
            async for outcome, end_offset, end_line in self._outcomes(
                job, plan, rules, source, batch_rows
            ):
                if hashing:
                    await hash_passwords(outcome.valid, self.hash_pool)
                if writing is not None:
                    await writing
                    self._report(job.progress)
                batch = writer.BatchWrite(outcome, end_offset, end_line, rules)
                writing = asyncio.create_task(writer.write(job, batch))
            if writing is not None:
                await writing
                self._report(job.progress)
        finally:
            # Reading the file failed (or this run is stopping) while a batch was being
            # written: that write ends as it would have (committed or rolled back) first.
            if writing is not None and not writing.done():
                with contextlib.suppress(Exception):
                    await writing
        if not rules.send_invites or rules.dry_run:
            return {}
        if self.mailer is None:
            return {"invites_error": "This run cannot send e-mail"}
        return await invites.send(self.mailer, job)

    async def _outcomes(
        self,
        job: RunningJob,
        plan: ColumnPlan,
        rules: ValidationRules,
        source: dict[str, Any],
        batch_rows: int,
    ) -> AsyncIterator[tuple[BatchOutcome, int, int]]:
        """Validated batches from the checkpoint on, each with the checkpoint after it."""
        if source.get("kind") == "xlsx":
            # The checkpoint is the next row number (offset and line alike).
            async for sheet_rows in xlsx_source.batches(
                self.source, rules, after_line=job.line - 1, batch_rows=batch_rows
            ):
                end = sheet_rows[-1].line + 1
                valid = await asyncio.to_thread(validate_sheet_rows, sheet_rows, plan, rules)
                yield valid, end, end
            return
        fmt = csv_source.CsvFormat.from_json(source) if source else csv_source.LEGACY
        delimiter, quotechar = fmt.dialect.delimiter, fmt.dialect.quotechar
        async for batch in csv_source.batches(
            self.source, fmt, offset=job.offset, line=job.line, batch_rows=batch_rows
        ):
            # In a thread, so the event loop drives the previous batch's write meanwhile.
            outcome = await asyncio.to_thread(
                parse_batch, batch.records, plan, rules, delimiter=delimiter, quotechar=quotechar
            )
            yield outcome, batch.end_offset, batch.end_line

    async def _plan(
        self, job: RunningJob, rules: ValidationRules
    ) -> tuple[ColumnPlan, dict[str, Any]]:
        """The column plan and how the file is read: saved on the job by its first run, made
        now otherwise."""
        # `file_format`, not `source`: a CLI import names its file in params["source"].
        if job.has_plan and "plan" in job.params:
            return ColumnPlan.from_json(job.params["plan"]), job.params.get("file_format") or {}
        prefix = await self.source.read(0, PREFIX_BYTES)
        mapping = job.params.get("mapping_config") or {}
        if prefix.startswith(ZIP_MAGIC) or prefix.startswith(OLE2_MAGIC):
            sheet = await xlsx_source.prescan(self.source, rules)
            plan = plan_columns(sheet.header, mapping, rules)
            source, warnings = sheet.to_json(), sheet.warnings
            total, offset, line = sheet.data_rows, sheet.header_line + 1, sheet.header_line + 1
        else:
            fmt = await csv_source.inspect(self.source, prefix, rules)
            scan = await csv_source.prescan(self.source, fmt)
            header = parse_header(
                scan.header_text,
                delimiter=fmt.dialect.delimiter,
                quotechar=fmt.dialect.quotechar,
            )
            plan = plan_columns(header, mapping, rules)
            source, warnings = fmt.to_json(), []
            total, offset, line = scan.data_rows, scan.data_offset, scan.data_line
        warnings += plan.warnings
        if rules.on_duplicate != "skip" and "password" in plan.field_index:
            warnings.append(
                "Passwords are set only for customers this import creates: an existing "
                f"customer's password is never changed (on_duplicate={rules.on_duplicate})"
            )
        if plan.unknown_columns:
            warnings.append(f"Columns not imported: {', '.join(plan.unknown_columns)}")
        await job.save_plan(
            total_rows=total,
            params={"plan": plan.to_json(), "file_format": source},
            warnings=warnings,
            offset=offset,
            line=line,
            result={"unknown_columns": plan.unknown_columns, "file_format": source},
        )
        self._report(job.progress)
        return plan, source

    def _report(self, progress: JobProgress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)
