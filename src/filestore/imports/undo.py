"""Undoing an import: a job of its own (`imports:run_import_undo`), resumable, idempotent.

First the updates (`on_duplicate`) are restored from `import_updates`, each only if the
customer's `updated_at` is still the one the import left (else someone changed it since: it is
kept as it is, and listed). Then the customers the import created (`created_by_job_id`) are
deleted with their users, and through the users' cascades their sessions, reset tokens and
invites — unless one has files or tickets, its user has logged in, or it was changed since the
import: then it is kept and listed. Both phases go in batches in id order, each batch with the
job's checkpoint in one transaction (`checkpoint_line` is the phase, `checkpoint_offset` the
last customer id done), so a crashed undo resumes where it stopped and never acts twice.

The kept customers are the job's `error_log` entries (`row` is the customer id, `value` its
e-mail, `error` why it was kept) and its `skipped_rows`; `successful_rows` counts the
customers restored or removed. At the end the import's own `result` gets `undone_by`, and an
`import.undone` audit event is written.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import structlog

from filestore.db import libpq_url
from filestore.imports.fields import UPDATABLE
from filestore.jobs.models import JobStatus
from filestore.jobs.running import JobCancelled, JobSuperseded, RunningJob, Step

log = structlog.get_logger(__name__)

BATCH = 2000
RESTORING, DELETING = 0, 1
SKIPPED = "skipped"

_COUNT = """
SELECT (SELECT count(*) FROM import_updates WHERE job_id = %(import_id)s)
     + (SELECT count(*) FROM customers WHERE created_by_job_id = %(import_id)s)
"""

_RESTORE = f"""
WITH batch AS (
    SELECT customer_id, previous FROM import_updates
    WHERE job_id = %(import_id)s AND customer_id > %(after)s
    ORDER BY customer_id LIMIT %(limit)s
), restored AS (
    UPDATE customers c SET {", ".join(f"{f} = b.previous->>'{f}'" for f in UPDATABLE)},
        updated_at = now()
    FROM batch b
    WHERE c.id = b.customer_id AND c.updated_at = (b.previous->>'updated_at')::timestamptz
    RETURNING c.id
)
SELECT (SELECT max(customer_id) FROM batch), (SELECT count(*) FROM batch),
       (SELECT count(*) FROM restored),
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'row', c.id, 'column', 'customer_id', 'value', c.email,
                    'error', 'kept: changed since the import, not restored'))
                 FROM batch b JOIN customers c ON c.id = b.customer_id
                 WHERE b.customer_id NOT IN (SELECT id FROM restored)), '[]'::jsonb)
"""

_DELETE = """
WITH batch AS (
    SELECT id, email, created_at, updated_at FROM customers
    WHERE created_by_job_id = %(import_id)s AND id > %(after)s
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE
), verdict AS (
    SELECT b.id, b.email, CASE
        WHEN EXISTS (SELECT 1 FROM file_uploads f WHERE f.customer_id = b.id) THEN 'has files'
        WHEN EXISTS (SELECT 1 FROM tickets t WHERE t.customer_id = b.id) THEN 'has tickets'
        WHEN EXISTS (SELECT 1 FROM users u JOIN auth_sessions s ON s.user_id = u.id
                     WHERE u.customer_id = b.id) THEN 'its user has logged in'
        WHEN b.updated_at > b.created_at THEN 'changed since the import'
    END AS kept
    FROM batch b
), deleted AS (
    DELETE FROM customers c USING verdict v WHERE c.id = v.id AND v.kept IS NULL
    RETURNING c.id
)
SELECT (SELECT max(id) FROM batch), (SELECT count(*) FROM batch),
       (SELECT count(*) FROM deleted),
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'row', id, 'column', 'customer_id', 'value', email, 'error', 'kept: ' || kept))
                 FROM verdict WHERE kept IS NOT NULL), '[]'::jsonb)
"""

_MARK_UNDONE = """
UPDATE background_jobs
SET result = result || jsonb_build_object('undone_by', %(undo_id)s::text, 'undone_at', now())
WHERE id = %(import_id)s
"""

_AUDIT = """
INSERT INTO audit_events (action, actor_id, details)
VALUES ('import.undone', %(actor)s, %(details)s::jsonb)
"""


class ImportUndo:
    """Runs one undo job on its own psycopg connection."""

    def __init__(self, *, database_url: str, job_id: uuid.UUID) -> None:
        self.database_url = database_url
        self.job_id = job_id
        self.attempt: int | None = None

    async def run(self) -> str:
        async with await psycopg.AsyncConnection.connect(libpq_url(self.database_url)) as conn:
            job = await RunningJob.claim(conn, self.job_id)
            if job is None:
                return SKIPPED
            self.attempt = job.attempt
            import_id = uuid.UUID(str(job.params["undo_of"]))
            try:
                try:
                    await self._run(job, import_id)
                    status = JobStatus.completed
                except JobCancelled:
                    status = JobStatus.cancelled
                await job.finish(status)
            except JobSuperseded:
                return "superseded"
            log.info("import.undo_finished", job_id=str(self.job_id), status=status.value)
            return status.value

    async def _run(self, job: RunningJob, import_id: uuid.UUID) -> None:
        if not job.has_plan:
            cursor = await job.conn.execute(_COUNT, {"import_id": import_id})
            row = await cursor.fetchone()
            assert row is not None
            await job.save_plan(
                total_rows=int(row[0]),
                params={},
                warnings=[],
                offset=0,
                line=RESTORING,
                result={"undo_of": str(import_id)},
            )
        while True:
            phase = job.line
            statement = _RESTORE if phase == RESTORING else _DELETE
            async with job.conn.transaction():
                cursor = await job.conn.execute(
                    statement, {"import_id": import_id, "after": job.offset, "limit": BATCH}
                )
                row = await cursor.fetchone()
                assert row is not None
                last, seen, done, kept = row
                if last is None:
                    if phase == DELETING:
                        await self._mark_undone(job, import_id)
                        await job.checkpoint(Step(offset=job.offset, line=phase))
                        return
                    await job.checkpoint(Step(offset=0, line=DELETING))
                    continue
                await job.checkpoint(
                    Step(
                        offset=int(last),
                        line=phase,
                        processed=int(seen),
                        successful=int(done),
                        skipped=int(seen) - int(done),
                        errors=list(kept),
                    )
                )

    async def _mark_undone(self, job: RunningJob, import_id: uuid.UUID) -> None:
        await job.conn.execute(_MARK_UNDONE, {"undo_id": str(job.id), "import_id": import_id})
        cursor = await job.conn.execute(
            "SELECT created_by FROM background_jobs WHERE id = %s", (job.id,)
        )
        row = await cursor.fetchone()
        p = job.progress
        details = {
            "import_job_id": str(import_id),
            "undo_job_id": str(job.id),
            "done": p.successful_rows,
            "kept": p.skipped_rows,
        }
        await job.conn.execute(
            _AUDIT, {"actor": row[0] if row else None, "details": json.dumps(details)}
        )


def undo_params(import_id: uuid.UUID) -> dict[str, Any]:
    return {"undo_of": str(import_id)}
