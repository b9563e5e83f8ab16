"""`filestore import FILE`: the API's import, run in this process with a progress bar."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from filestore.db import create_engine, create_sessionmaker
from filestore.imports.records import ImportSource
from filestore.imports.runner import CustomerImport
from filestore.jobs import queue as job_queue
from filestore.jobs import service as jobs_service
from filestore.jobs.models import BackgroundJob, JobStatus, JobType
from filestore.jobs.running import JobProgress, fail_job
from filestore.settings import Settings

READ_CHUNK = 1024 * 1024
INTERRUPTED = (
    "Interrupted from the command line: the rows counted as processed are imported; "
    "run the import again to add the rest (rows already imported are skipped)"
)


def speed_text(progress: JobProgress) -> str:
    """`12,345 rows/s, ETA 0:01:02`: the job's own figures, as the API reports them."""
    if progress.rows_per_second is None:
        return ""
    text = f"{progress.rows_per_second:,.0f} rows/s"
    if progress.eta_seconds is not None:
        text += f", ETA {timedelta(seconds=round(progress.eta_seconds))}"
    return text


def file_source(path: Path) -> ImportSource:
    async def open_from(offset: int) -> AsyncIterator[bytes]:
        async with await anyio.open_file(path, "rb") as handle:
            await handle.seek(offset)
            while chunk := await handle.read(READ_CHUNK):
                yield chunk

    return ImportSource(size=path.stat().st_size, open=open_from)


async def run_cli_import(
    settings: Settings, database_url: str, path: Path, params: dict[str, Any], console: Console
) -> str:
    engine = create_engine(settings, database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            job = await jobs_service.create(
                session, job_type=JobType.csv_import, params=params, created_by=None
            )
            await session.commit()
        columns = (
            TextColumn("[bold]Importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TextColumn("{task.fields[speed]}"),
        )
        with job_queue.create_hash_pool() as pool, Progress(*columns, console=console) as bar:
            task = bar.add_task("import", total=None, speed="")

            def on_progress(progress: JobProgress) -> None:
                bar.update(
                    task,
                    total=progress.total_rows,
                    completed=progress.processed_rows,
                    speed=speed_text(progress),
                )

            runner = CustomerImport(
                database_url=database_url,
                job_id=job.id,
                source=file_source(path),
                hash_pool=pool,
                on_progress=on_progress,
            )
            try:
                await runner.run()
            except (asyncio.CancelledError, KeyboardInterrupt):
                # Ctrl-C. No queue entry will ever resume this job, so it must not stay
                # `processing`; what was committed stays, and a rerun skips it as duplicates.
                await fail_job(
                    database_url,
                    job.id,
                    INTERRUPTED,
                    status=JobStatus.cancelled,
                    attempt=runner.attempt,
                )
                raise
            except Exception as exc:
                await fail_job(
                    database_url,
                    job.id,
                    f"The import stopped on an internal error ({type(exc).__name__})",
                    attempt=runner.attempt,
                )
                raise
        async with create_sessionmaker(engine)() as session:
            done = await session.get(BackgroundJob, job.id)
            assert done is not None
        _print_summary(console, done)
        return done.status.value
    finally:
        await engine.dispose()


def _print_summary(console: Console, job: BackgroundJob) -> None:
    dry_run = job.params.get("validation_rules", {}).get("dry_run")
    dry = " (dry run: nothing written)" if dry_run else ""
    table = Table(title=f"Import {job.id}: {job.status.value}{dry}")
    names = ("total_rows", "processed_rows", "successful_rows", "created_rows", "updated_rows")
    for name in (*names, "failed_rows", "skipped_rows", "rows_per_second"):
        table.add_row(name, str(getattr(job, name)))
    console.print(table)
    if dry_run:
        # Also on a line of its own: a narrow table wraps its title anywhere.
        console.print("dry run: nothing written")
    if job.message:
        console.print(f"[red]{job.message}[/red]")
    for warning in job.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    for error in job.error_log[:20]:
        cell = f"{error.get('column')}={error.get('value')!r}"
        console.print(f"line {error['row']}: {error['error']} ({cell})")
    if job.failed_rows > 20:
        console.print(f"… and {job.failed_rows - 20} more failed rows")
