"""Running a customer import: exactly-once in effect, resumable after a crash.

The CSV is read from the object store as a stream, from the job's checkpoint offset. Each
batch of rows is written in ONE transaction together with the job's counters and the new
checkpoint, so a worker killed at any moment resumes at the last committed batch with no row
lost and none doubled. The checkpoint update is conditional on the old checkpoint: if two
runners ever work on the same job, the second one's batch is rolled back and it stops.

Duplicates (by e-mail, case-insensitive) are skipped by the database itself — the unique index
on `lower(email)` with `ON CONFLICT DO NOTHING` — so they are exact across batches, across
concurrent imports and across restarts, and memory stays flat whatever the file's size.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog

from filestore.auth.security import hash_password_sync
from filestore.db import libpq_url
from filestore.imports.records import (
    Record,
    RecordSplitter,
    UnterminatedQuote,
    gc_paused,
    record_batches,
)
from filestore.imports.rows import (
    ColumnPlan,
    ImportFileError,
    RowError,
    ValidationRules,
    ValidRow,
    parse_header,
    plan_columns,
    validate_row,
)
from filestore.jobs.models import ERROR_LOG_CAP

log = structlog.get_logger(__name__)

MAX_RECORD_BYTES = 64 * 1024
BATCH_ROWS = 5000
PASSWORDS_PER_BATCH = 256
STAGING_COLUMNS = (
    "line",
    "full_name",
    "email",
    "phone",
    "address",
    "city",
    "state",
    "postal_code",
    "country",
    "password_hash",
)

_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS import_staging (
    line int, full_name text, email text, phone text, address text, city text, state text,
    postal_code text, country text, password_hash text
) ON COMMIT DELETE ROWS
"""

# Customers first, in e-mail order (a stable lock order for concurrent imports), then a
# customer user for each new customer: with the given password's hash, or an unusable one
# and password_reset_required. The username is the e-mail when it fits `users.username`
# (150 characters; an e-mail may have 320): customer users log in by e-mail anyway, and one
# over-long value must not fail the whole batch. `inserted` returns each e-mail exactly as
# `dedup` holds it, so the join needs no lower() (that cost ~9% of the batch's database time).
_INSERT_BATCH = """
WITH dedup AS (
    SELECT DISTINCT ON (lower(email)) * FROM import_staging ORDER BY lower(email), line
), inserted AS (
    INSERT INTO customers (full_name, email, phone, address, city, state, postal_code, country)
    SELECT full_name, email, phone, address, city, state, postal_code, country
    FROM dedup ORDER BY lower(email)
    ON CONFLICT DO NOTHING
    RETURNING id, email
), new_users AS (
    INSERT INTO users (username, email, password_hash, role, customer_id, password_reset_required)
    SELECT CASE WHEN length(i.email) <= 150 THEN i.email ELSE 'customer-' || i.id END,
           i.email, coalesce(d.password_hash, '!unusable:' || gen_random_uuid()::text),
           'customer', i.id, d.password_hash IS NULL
    FROM inserted i JOIN dedup d ON d.email = i.email
    ON CONFLICT DO NOTHING
    RETURNING id, password_reset_required
), invites AS (
    -- validation_rules.send_invites: who gets a set-your-password e-mail once the job is done
    INSERT INTO account_invites (job_id, user_id)
    SELECT %(job_id)s, id FROM new_users WHERE password_reset_required AND %(send_invites)s
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM new_users)
"""

# Dry run: what would be new, without writing customers; e-mails seen earlier in the file are
# remembered in a temp table so in-file duplicates are found across batches too.
_DRY_RUN_BATCH = """
WITH dedup AS (
    SELECT DISTINCT ON (lower(email)) lower(email) AS email FROM import_staging
), fresh AS (
    SELECT email FROM dedup d
    WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE lower(c.email) = d.email)
      AND NOT EXISTS (SELECT 1 FROM import_dry_run_seen s WHERE s.email = d.email)
), remembered AS (
    INSERT INTO import_dry_run_seen SELECT email FROM dedup ON CONFLICT DO NOTHING
)
SELECT count(*), 0 FROM fresh
"""

_CHECKPOINT = """
UPDATE background_jobs SET
    processed_rows = processed_rows + %(processed)s,
    successful_rows = successful_rows + %(successful)s,
    failed_rows = failed_rows + %(failed)s,
    skipped_rows = skipped_rows + %(skipped)s,
    warning_rows = warning_rows + %(warned)s,
    error_log = error_log || %(errors)s::jsonb,
    result = result || %(result)s::jsonb,
    checkpoint_offset = %(offset)s,
    checkpoint_line = %(line)s,
    heartbeat_at = now()
WHERE id = %(job_id)s AND checkpoint_offset = %(expected_offset)s AND status = 'processing'
RETURNING cancel_requested, jsonb_array_length(error_log)
"""


class JobSuperseded(Exception):
    """Another runner moved this job's checkpoint: this one must stop without writing."""


@dataclass
class ImportSource:
    """Where the CSV bytes come from: `open(offset)` streams the file from a byte offset."""

    size: int
    open: Callable[[int], AsyncIterator[bytes | memoryview]]


@dataclass
class Progress:
    """What a batch did; the CLI's progress bar reads these."""

    total_rows: int | None = None
    processed_rows: int = 0
    successful_rows: int = 0
    failed_rows: int = 0
    skipped_rows: int = 0


@dataclass
class BatchOutcome:
    valid: list[ValidRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0


def parse_batch(records: list[Record], plan: ColumnPlan, rules: ValidationRules) -> BatchOutcome:
    """Decode, split into cells and validate a batch of records (pure, CPU only)."""
    with gc_paused():
        return _parse_batch(records, plan, rules)


def _parse_batch(records: list[Record], plan: ColumnPlan, rules: ValidationRules) -> BatchOutcome:
    outcome = BatchOutcome()
    texts: list[str] = []
    lines: list[int] = []
    for record in records:
        if record.too_long:
            outcome.errors.append(
                RowError(record.line, None, None, f"Row is longer than {MAX_RECORD_BYTES} bytes")
            )
            continue
        texts.append(record.data.decode("utf-8"))
        lines.append(record.line)
    try:
        parsed = list(csv.reader(texts))
    except csv.Error:
        parsed = []
        for text in texts:
            try:
                parsed.extend(csv.reader([text]))
            except csv.Error as exc:
                parsed.append([f"\x00{exc}"])
    for line, cells in zip(lines, parsed, strict=True):
        if len(cells) == 1 and cells[0].startswith("\x00"):
            outcome.errors.append(
                RowError(line, None, None, f"Row is not valid CSV: {cells[0][1:]}")
            )
            continue
        result = validate_row(line, cells, plan, rules)
        if result is None:
            outcome.skipped += 1
        elif isinstance(result, RowError):
            outcome.errors.append(result)
        else:
            outcome.valid.append(result)
    return outcome


def _hash_many(passwords: list[str]) -> list[str]:
    return [hash_password_sync(p) for p in passwords]


async def hash_passwords(rows: list[ValidRow], pool: Executor | None) -> None:
    """Replace each row's password with its argon2id hash, spread across the pool's processes."""
    indexed = [
        (i, row.values["password"]) for i, row in enumerate(rows) if row.values.get("password")
    ]
    if not indexed:
        return
    loop = asyncio.get_running_loop()
    workers = max(1, os.cpu_count() or 1)
    size = max(1, -(-len(indexed) // workers))
    parts = [indexed[i : i + size] for i in range(0, len(indexed), size)]
    results = await asyncio.gather(
        *(loop.run_in_executor(pool, _hash_many, [str(p) for _, p in part]) for part in parts)
    )
    for part, hashes in zip(parts, results, strict=True):
        for (index, _), hashed in zip(part, hashes, strict=True):
            rows[index].values["password_hash"] = hashed
            rows[index].values["password"] = None


async def prescan(source: ImportSource) -> tuple[int, int, int, str]:
    """Count data rows and check the whole file is UTF-8 text before importing anything.

    Returns (data rows, offset just past the header, line number of the first data row,
    header text). The header can span lines (a quoted newline), so the first data row is not
    always on line 2.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    splitter = RecordSplitter(max_record_bytes=MAX_RECORD_BYTES)
    header: Record | None = None
    rows = 0
    consumed = 0
    async for chunk in source.open(0):
        data = bytes(chunk)
        if b"\x00" in data:
            raise ImportFileError("The file is not a CSV text file (it contains NUL bytes)")
        try:
            decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise ImportFileError(_encoding_message(data, exc, consumed)) from exc
        consumed += len(data)
        for record in splitter.feed(data):
            if header is None:
                header = record
            elif record.data.strip():
                rows += 1
    try:
        decoder.decode(b"", final=True)
        last = splitter.finish()
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "The file is not UTF-8: it ends in the middle of a character"
        ) from exc
    except UnterminatedQuote as exc:
        raise ImportFileError(str(exc)) from exc
    for record in last:
        if header is None:
            header = record
        elif record.data.strip():
            rows += 1
    if header is None or not header.data.strip():
        raise ImportFileError(
            "The file is empty" if header is None else "The file has no header row"
        )
    if header.too_long:
        raise ImportFileError("The header row is longer than 64 KiB")
    return rows, header.end_offset, header.next_line, header.data.decode("utf-8")


def _encoding_message(data: bytes, exc: UnicodeDecodeError, consumed: int) -> str:
    offset = consumed + exc.start
    try:
        data.decode("cp1252")
        guess = " It looks like Latin-1/Windows-1252:"
    except UnicodeDecodeError:
        guess = ""
    return (
        f"The file is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {offset}).{guess} "
        "save it as UTF-8 (CSV UTF-8) and upload it again"
    )


class CustomerImport:
    """Runs one import job on its own psycopg connection."""

    def __init__(
        self,
        *,
        database_url: str,
        job_id: uuid.UUID,
        source: ImportSource,
        hash_pool: Executor | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.job_id = job_id
        self.source = source
        self.hash_pool = hash_pool
        self.on_progress = on_progress
        self.progress = Progress()
        self.error_log_len = 0

    async def run(self) -> str:
        """Import from the checkpoint to the end; returns the job's final status."""
        async with await psycopg.AsyncConnection.connect(libpq_url(self.database_url)) as conn:
            job = await self._start(conn)
            if job is None:
                return "skipped"
            try:
                plan, rules, offset, line = await self._prepare(conn, job)
                status = await self._import(conn, plan, rules, offset, line)
            except ImportFileError as exc:
                await self._finish(conn, "failed", str(exc))
                return "failed"
            except JobSuperseded:
                log.warning("import.superseded", job_id=str(self.job_id))
                return "superseded"
            await self._finish(conn, status, None)
            return status

    async def _start(self, conn: psycopg.AsyncConnection[Any]) -> dict[str, Any] | None:
        async with conn.transaction():
            cursor = await conn.execute(
                """
                UPDATE background_jobs
                SET status = CASE WHEN cancel_requested THEN 'cancelled'::job_status
                                  ELSE 'processing'::job_status END,
                    started_at = coalesce(started_at, now()),
                    finished_at = CASE WHEN cancel_requested THEN now() END,
                    attempts = attempts + 1, heartbeat_at = now()
                WHERE id = %s AND status IN ('pending', 'processing')
                RETURNING status::text, params, total_rows, checkpoint_offset, checkpoint_line,
                          processed_rows, successful_rows, failed_rows, skipped_rows,
                          jsonb_array_length(error_log)
                """,
                (self.job_id,),
            )
            row = await cursor.fetchone()
        if row is None or row[0] != "processing":
            log.info("import.not_runnable", job_id=str(self.job_id), status=row[0] if row else None)
            return None
        keys = (
            "status",
            "params",
            "total_rows",
            "checkpoint_offset",
            "checkpoint_line",
            "processed_rows",
            "successful_rows",
            "failed_rows",
            "skipped_rows",
            "error_log_len",
        )
        job = dict(zip(keys, row, strict=True))
        self.error_log_len = int(job["error_log_len"])
        self.progress = Progress(
            total_rows=job["total_rows"],
            processed_rows=job["processed_rows"],
            successful_rows=job["successful_rows"],
            failed_rows=job["failed_rows"],
            skipped_rows=job["skipped_rows"],
        )
        return job

    async def _prepare(
        self, conn: psycopg.AsyncConnection[Any], job: dict[str, Any]
    ) -> tuple[ColumnPlan, ValidationRules, int, int]:
        params = job["params"]
        rules = ValidationRules.from_params(params.get("validation_rules") or {})
        if job["total_rows"] is not None and "plan" in params:
            plan = ColumnPlan.from_json(params["plan"])
            return plan, rules, int(job["checkpoint_offset"]), int(job["checkpoint_line"])
        total, header_end, first_line, header_text = await prescan(self.source)
        plan = plan_columns(parse_header(header_text), params.get("mapping_config") or {}, rules)
        warnings = list(plan.warnings)
        if plan.unknown_columns:
            warnings.append(f"Columns not imported: {', '.join(plan.unknown_columns)}")
        async with conn.transaction():
            await conn.execute(
                """
                UPDATE background_jobs
                SET total_rows = %s, params = params || jsonb_build_object('plan', %s::jsonb),
                    warnings = %s::jsonb, checkpoint_offset = %s, checkpoint_line = %s,
                    result = result || %s::jsonb
                WHERE id = %s AND checkpoint_offset = 0
                """,
                (
                    total,
                    json.dumps(plan.to_json()),
                    json.dumps(warnings),
                    header_end,
                    first_line,
                    json.dumps({"unknown_columns": plan.unknown_columns}),
                    self.job_id,
                ),
            )
        self.progress.total_rows = total
        self._report()
        return plan, rules, header_end, first_line

    async def _import(
        self,
        conn: psycopg.AsyncConnection[Any],
        plan: ColumnPlan,
        rules: ValidationRules,
        offset: int,
        line: int,
    ) -> str:
        await conn.execute(_CREATE_STAGING)
        if rules.dry_run:
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS import_dry_run_seen (email text PRIMARY KEY)"
            )
        await conn.commit()
        batches = record_batches(
            self.source.open(offset),
            start_offset=offset,
            start_line=line,
            max_record_bytes=MAX_RECORD_BYTES,
            # With passwords a batch is minutes of hashing: keep it to seconds, so progress
            # moves and a crash loses little work.
            batch_rows=(
                PASSWORDS_PER_BATCH
                if "password" in plan.field_index and not rules.dry_run
                else BATCH_ROWS
            ),
        )
        expected = offset
        async for batch in batches:
            outcome = parse_batch(batch.records, plan, rules)
            if not rules.dry_run:
                await hash_passwords(outcome.valid, self.hash_pool)
            cancel = await self._commit_batch(
                conn, outcome, rules, expected, batch.end_offset, batch.end_line
            )
            expected = batch.end_offset
            if cancel:
                return "cancelled"
        return "completed"

    async def _commit_batch(
        self,
        conn: psycopg.AsyncConnection[Any],
        outcome: BatchOutcome,
        rules: ValidationRules,
        expected_offset: int,
        end_offset: int,
        end_line: int,
    ) -> bool:
        """Write one batch and its checkpoint atomically; True when a cancel was requested."""
        for attempt in range(5):
            try:
                return await self._write_batch(
                    conn, outcome, rules, expected_offset, end_offset, end_line
                )
            except psycopg.errors.DeadlockDetected:
                # Concurrent imports of overlapping files: the batch rolled back whole; redo it.
                log.warning("import.deadlock_retry", job_id=str(self.job_id), attempt=attempt)
                await asyncio.sleep(0.05 * (attempt + 1))
        raise RuntimeError("import batch kept deadlocking")

    async def _write_batch(
        self,
        conn: psycopg.AsyncConnection[Any],
        outcome: BatchOutcome,
        rules: ValidationRules,
        expected_offset: int,
        end_offset: int,
        end_line: int,
    ) -> bool:
        valid = outcome.valid
        async with conn.transaction():
            successful = 0
            if valid:
                async with conn.cursor().copy(
                    f"COPY import_staging ({', '.join(STAGING_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in valid:
                        v = row.values
                        await copy.write_row(
                            (
                                row.line,
                                v.get("full_name"),
                                v.get("email"),
                                v.get("phone"),
                                v.get("address"),
                                v.get("city"),
                                v.get("state"),
                                v.get("postal_code"),
                                v.get("country"),
                                v.get("password_hash"),
                            )
                        )
                if rules.dry_run:
                    cursor = await conn.execute(_DRY_RUN_BATCH)
                else:
                    cursor = await conn.execute(
                        _INSERT_BATCH, {"job_id": self.job_id, "send_invites": rules.send_invites}
                    )
                counts = await cursor.fetchone()
                successful = int(counts[0]) if counts else 0
            warned = [row.warning for row in valid if row.warning is not None]
            if outcome.errors or warned:
                async with conn.cursor().copy(
                    'COPY import_row_errors (job_id, "row", "column", value, error, is_warning) '
                    "FROM STDIN"
                ) as copy:
                    flagged = [(e, False) for e in outcome.errors] + [(w, True) for w in warned]
                    for e, warn in flagged:
                        await copy.write_row((self.job_id, e.row, e.column, e.value, e.error, warn))
            room = max(0, ERROR_LOG_CAP - self.error_log_len)
            new_errors = [e.to_json() for e in outcome.errors[:room]]
            skipped = outcome.skipped + len(valid) - successful
            cursor = await conn.execute(
                _CHECKPOINT,
                {
                    "processed": len(valid) + len(outcome.errors) + outcome.skipped,
                    "successful": successful,
                    "failed": len(outcome.errors),
                    "skipped": skipped,
                    "warned": len(warned),
                    "errors": json.dumps(new_errors),
                    "result": "{}",
                    "offset": end_offset,
                    "line": end_line,
                    "job_id": self.job_id,
                    "expected_offset": expected_offset,
                },
            )
            checkpoint = await cursor.fetchone()
            if checkpoint is None:
                raise JobSuperseded()
            cancel, self.error_log_len = bool(checkpoint[0]), int(checkpoint[1])
        p = self.progress
        p.processed_rows += len(valid) + len(outcome.errors) + outcome.skipped
        p.successful_rows += successful
        p.failed_rows += len(outcome.errors)
        p.skipped_rows += skipped
        self._report()
        return cancel

    async def _finish(
        self, conn: psycopg.AsyncConnection[Any], status: str, message: str | None
    ) -> None:
        async with conn.transaction():
            await conn.execute(
                """
                UPDATE background_jobs SET status = %s::job_status, finished_at = now(),
                       message = coalesce(%s, message), heartbeat_at = now()
                WHERE id = %s AND status = 'processing'
                """,
                (status, message, self.job_id),
            )
        log.info(
            "import.finished",
            job_id=str(self.job_id),
            status=status,
            message=message,
            successful=self.progress.successful_rows,
            failed=self.progress.failed_rows,
        )

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)


async def fail_job(
    database_url: str, job_id: uuid.UUID, message: str, *, status: str = "failed"
) -> None:
    """Mark a job failed (or cancelled) after an unexpected error or an interruption, so it
    is never left `processing`."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        await conn.execute(
            """
            UPDATE background_jobs SET status = %s::job_status, finished_at = now(), message = %s
            WHERE id = %s AND status IN ('pending', 'processing')
            """,
            (status, message, job_id),
        )
        await conn.commit()
