"""Queue housekeeping: retry jobs whose worker died (`jobs:retry_stalled_jobs`)."""

from __future__ import annotations

from typing import Any

import procrastinate
import structlog

log = structlog.get_logger(__name__)

blueprint = procrastinate.Blueprint()

HEARTBEAT_SECONDS = 5.0
STALLED_AFTER_SECONDS = 20.0


# Six-field cron: the SIXTH field is seconds (croniter). "*/15 * * * * *" would mean every
# second of minutes 0, 15, 30 and 45 only, leaving a dead worker's job stuck up to 15 minutes.
RETRY_STALLED_CRON = "* * * * * */15"


# procrastinate leaves a SIGKILLed worker's jobs in `doing` forever; this finds them by the
# dead worker's missing heartbeat and queues them again (they resume from their checkpoint).
@blueprint.periodic(cron=RETRY_STALLED_CRON, periodic_id="retry_stalled_jobs")
@blueprint.task(name="retry_stalled_jobs", queueing_lock="retry_stalled_jobs", pass_context=True)
async def retry_stalled_jobs(context: Any, timestamp: int) -> None:
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS):
        await manager.retry_job(job)
        log.warning("queue.stalled_job_retried", queue_job_id=job.id, task=job.task_name)
