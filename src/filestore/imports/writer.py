"""Writing one batch of an import: its customers and users, its failed rows and the job's
checkpoint, all in ONE transaction, so a worker killed at any moment resumes at the last
committed batch with no row lost and none doubled.

Duplicates (by e-mail, case-insensitive) are skipped by the database itself — the unique index
on `lower(email)` with `ON CONFLICT DO NOTHING` — so they are exact across batches, across
concurrent imports and across restarts, and memory stays flat whatever the file's size.

With `on_duplicate` `update` or `update_if_empty`, the same statement then updates the
customers that existed before this import, in id order, saving what it replaced in
`import_updates`. Never those it created or already updated itself: a repeated e-mail further
down the file is a duplicate in the file, skipped as in a batch (the first row counts). The
e-mail is never changed, nor the customer's user: an import sets a password only for a
customer it creates.

A customer's login (its `users` row) is written here only when it has something to hold: the
hash of the row's password, or an invite to send. A customer imported without either gets its
login when one is first asked for (`customers.service.ensure_login`, behind
`POST /customers/{id}/password-reset`), as a customer created through `POST /customers`
without a password does: an unusable password cannot log anybody in, so writing it up front
(five indexes and a foreign key per row, most of an import's database time) bought nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog

from filestore.imports import invites
from filestore.imports.fields import CUSTOMER_COLUMNS, UPDATABLE
from filestore.imports.parsing import BatchOutcome
from filestore.imports.rows import RowError, ValidationRules
from filestore.jobs.running import RunningJob, Step

log = structlog.get_logger(__name__)

DEADLOCK_RETRIES = 5
STAGING_COLUMNS = ("line", *CUSTOMER_COLUMNS, "password_hash")
_CUSTOMER_LIST = ", ".join(CUSTOMER_COLUMNS)

_CREATE_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS import_staging (
    line int, {", ".join(f"{name} text" for name in STAGING_COLUMNS[1:])}
) ON COMMIT DELETE ROWS
"""
_CREATE_DRY_RUN_SEEN = (
    "CREATE TEMP TABLE IF NOT EXISTS import_dry_run_seen (email text PRIMARY KEY)"
)
_COPY_STAGING = f"COPY import_staging ({', '.join(STAGING_COLUMNS)}) FROM STDIN"
_COPY_ROW_ERRORS = (
    'COPY import_row_errors (job_id, "row", "column", value, error, is_warning) FROM STDIN'
)

# Customers first, in e-mail order (a stable lock order for concurrent imports), then a
# customer user for each new customer that has a password (its hash), or, when invites are
# asked for, for every new customer (an unusable password and password_reset_required; the
# invite is a reset link). The username is the e-mail when it fits `users.username` (150
# characters; an e-mail may have 320): customer users log in by e-mail anyway, and one
# over-long value must not fail the whole batch. `inserted` returns each e-mail exactly as
# `dedup` holds it, so the join needs no lower() (that cost ~9% of the batch's database time).
# Returns the count of new customers and, when invites are asked for, the users to invite.
_DEDUP_INSERT = f"""
WITH dedup AS (
    SELECT DISTINCT ON (lower(email)) * FROM import_staging ORDER BY lower(email), line
), inserted AS (
    INSERT INTO customers ({_CUSTOMER_LIST}, created_by_job_id)
    SELECT {_CUSTOMER_LIST}, %(job_id)s FROM dedup ORDER BY lower(email)
    ON CONFLICT DO NOTHING
    RETURNING id, email
)"""
_NEW_USERS = """, new_users AS (
    INSERT INTO users (username, email, password_hash, role, customer_id, password_reset_required)
    SELECT CASE WHEN length(i.email) <= 150 THEN i.email ELSE 'customer-' || i.id END,
           i.email, coalesce(d.password_hash, '!unusable:' || gen_random_uuid()::text),
           'customer', i.id, d.password_hash IS NULL
    FROM inserted i JOIN dedup d ON d.email = i.email
    WHERE d.password_hash IS NOT NULL OR %(send_invites)s
    ON CONFLICT DO NOTHING
    RETURNING id, password_reset_required
)"""
_INSERTED = _DEDUP_INSERT + _NEW_USERS
_COUNTS = """
SELECT (SELECT count(*) FROM inserted),
       coalesce((SELECT array_agg(id) FROM new_users
                 WHERE password_reset_required AND %(send_invites)s), '{}'),
"""
_INSERT_BATCH = _INSERTED + _COUNTS + "0"
# No password in the batch and no invites: customers only.
_INSERT_CUSTOMERS_BATCH = (
    _DEDUP_INSERT + "\nSELECT (SELECT count(*) FROM inserted), '{}'::bigint[], 0"
)


def _update_batch(if_empty: bool) -> str:
    """The insert, then the update of customers that existed before the import (their rows
    locked in id order; `old` keeps the values the update replaces)."""
    if if_empty:
        wanted = {f: f"d.{f} IS NOT NULL AND coalesce(o.{f}, '') = ''" for f in UPDATABLE}
    else:
        wanted = {f: f"d.{f} IS NOT NULL AND d.{f} IS DISTINCT FROM o.{f}" for f in UPDATABLE}
    sets = ", ".join(
        f"{f} = CASE WHEN {cond} THEN d.{f} ELSE o.{f} END" for f, cond in wanted.items()
    )
    changed = " OR ".join(f"({cond})" for cond in wanted.values())
    previous = ", ".join(f"'{f}', o.{f}" for f in UPDATABLE)
    return f"""{_INSERTED}, old AS (
    SELECT c.id, lower(c.email) AS email, {", ".join(f"c.{f}" for f in UPDATABLE)}
    FROM customers c JOIN dedup dd ON lower(c.email) = lower(dd.email)
    WHERE c.created_by_job_id IS DISTINCT FROM %(job_id)s
      AND NOT EXISTS (SELECT 1 FROM import_updates u
                      WHERE u.job_id = %(job_id)s AND u.customer_id = c.id)
    ORDER BY c.id FOR UPDATE OF c
), updated AS (
    UPDATE customers c SET {sets}, updated_at = now()
    FROM old o JOIN dedup d ON lower(d.email) = o.email
    WHERE c.id = o.id AND ({changed})
    RETURNING c.id, c.updated_at, jsonb_build_object({previous}) AS previous
), saved AS (
    INSERT INTO import_updates (job_id, customer_id, previous)
    SELECT %(job_id)s, id, previous || jsonb_build_object('updated_at', updated_at)
    FROM updated
    ON CONFLICT (job_id, customer_id) DO NOTHING
)
{_COUNTS} (SELECT count(*) FROM updated)
"""


_UPDATE_BATCH = {"update": _update_batch(False), "update_if_empty": _update_batch(True)}

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
SELECT count(*), '{}'::bigint[], 0 FROM fresh
"""


@dataclass(frozen=True)
class BatchWrite:
    """One parsed batch, where the file continues after it, and the rules it runs under."""

    outcome: BatchOutcome
    end_offset: int
    end_line: int
    rules: ValidationRules


async def prepare(conn: psycopg.AsyncConnection[Any], rules: ValidationRules) -> None:
    """The session's temp tables (emptied at each commit)."""
    await conn.execute(_CREATE_STAGING)
    if rules.dry_run:
        await conn.execute(_CREATE_DRY_RUN_SEEN)
    await conn.commit()


async def write(job: RunningJob, batch: BatchWrite) -> None:
    """Write the batch and its checkpoint atomically. Raises `JobSuperseded` or
    `JobCancelled` (nothing of the batch is then written)."""
    for attempt in range(DEADLOCK_RETRIES):
        try:
            async with job.conn.transaction():
                await _write(job, batch)
            return
        except psycopg.errors.DeadlockDetected:
            # Concurrent imports of overlapping files: the batch rolled back whole; redo it.
            log.warning("import.deadlock_retry", job_id=str(job.id), attempt=attempt)
            await asyncio.sleep(0.05 * (attempt + 1))
    raise RuntimeError("import batch kept deadlocking")


async def _write(job: RunningJob, batch: BatchWrite) -> None:
    conn, outcome, rules = job.conn, batch.outcome, batch.rules
    successful = updated = 0
    if outcome.valid:
        async with conn.cursor().copy(_COPY_STAGING) as copy:
            for row in outcome.valid:
                values = row.values
                await copy.write_row((row.line, *(values.get(n) for n in STAGING_COLUMNS[1:])))
        if rules.dry_run:
            statement = _DRY_RUN_BATCH
        elif rules.on_duplicate in _UPDATE_BATCH:
            statement = _UPDATE_BATCH[rules.on_duplicate]
        elif rules.send_invites or any(r.values.get("password_hash") for r in outcome.valid):
            statement = _INSERT_BATCH
        else:
            statement = _INSERT_CUSTOMERS_BATCH
        cursor = await conn.execute(
            statement, {"send_invites": rules.send_invites, "job_id": job.id}
        )
        counts = await cursor.fetchone()
        assert counts is not None
        updated = int(counts[2])
        successful = int(counts[0]) + updated
        await invites.record(conn, job_id=job.id, user_ids=list(counts[1]))
    warned = outcome.warnings
    await _record_row_errors(conn, job, outcome.errors, warned)
    await job.checkpoint(
        Step(
            offset=batch.end_offset,
            line=batch.end_line,
            processed=outcome.processed,
            successful=successful,
            updated=updated,
            failed=len(outcome.errors),
            skipped=outcome.skipped + len(outcome.valid) - successful,
            warned=len(warned),
            errors=[e.to_json() for e in outcome.errors[: job.error_log_room]],
        )
    )


async def _record_row_errors(
    conn: psycopg.AsyncConnection[Any],
    job: RunningJob,
    errors: list[RowError],
    warned: list[RowError],
) -> None:
    """Every failed or warned row, for `errors.csv` (the job's `error_log` keeps the first)."""
    if not errors and not warned:
        return
    async with conn.cursor().copy(_COPY_ROW_ERRORS) as copy:
        flagged = [(e, False) for e in errors] + [(w, True) for w in warned]
        for e, is_warning in flagged:
            await copy.write_row((job.id, e.row, e.column, e.value, e.error, is_warning))
