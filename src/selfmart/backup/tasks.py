"""The scheduled backup: daily at 03:30 in the default time zone, when backup_scheduled is on."""

from __future__ import annotations

import logging

from selfmart.backup import service as backups
from selfmart.jobs import runtime
from selfmart.jobs.registry import Cron, task

log = logging.getLogger(__name__)

SCHEDULED = "backup.scheduled"


@task(SCHEDULED, schedule=[Cron("30 3 * * *")])
async def scheduled_backup() -> str | None:
    """One archive a night, kept and uploaded like `selfmart backup`'s. A failure is logged at
    ERROR and raised, so the job's failure shows in the worker's log (and, later, an alert)."""
    settings = runtime.settings()
    if not settings.backup_scheduled:
        return None
    try:
        result = await backups.backup(settings)
    except Exception:
        log.exception("scheduled backup failed")
        raise
    return result.path.name
