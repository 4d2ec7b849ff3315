"""The nightly pruning of old log rows (04:10 in the default time zone, after the backup)."""

from __future__ import annotations

from selfmart.jobs import runtime
from selfmart.jobs.registry import Cron, task
from selfmart.retention import service as retention

PRUNE = "logs.prune"


@task(PRUNE, schedule=[Cron("10 4 * * *")])
async def prune_logs() -> dict[str, int]:
    return await retention.prune_logs(runtime.sessionmaker(), runtime.settings())
