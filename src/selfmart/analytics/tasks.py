"""The analytics domain's background job: the incremental refresh of the sales summaries."""

from __future__ import annotations

from datetime import date, timedelta

from selfmart.analytics import daily_report as report
from selfmart.analytics import refresh
from selfmart.jobs import runtime
from selfmart.jobs.registry import Cron, Every, task
from selfmart.kit.time import to_zone, utcnow

REFRESH = "analytics.refresh"
DAILY_REPORT = "analytics.daily_report"


@task(REFRESH, schedule=[Every(60)])
async def refresh_summaries() -> int:
    """Every minute: recompute the store days whose orders changed since the last run."""
    async with runtime.sessionmaker()() as session:
        days = await refresh.refresh(session)
        await session.commit()
    return days


@task(DAILY_REPORT, schedule=[Cron("30 7 * * *")])
async def daily_report(day: str | None = None) -> int:
    """07:30 in the default zone: email yesterday's figures (or those of `day`, ISO) to the
    users who may read the analytics, each of their own stores, and to the configured
    addresses, the chain's, through the notification outbox (sent after commit, retried);
    returns how many messages were queued (0 when off or no recipients)."""
    settings = runtime.settings()
    if not settings.analytics_daily_report:
        return 0
    if day is None:
        which = to_zone(utcnow(), settings.default_timezone).date() - timedelta(days=1)
    else:
        which = date.fromisoformat(day)
    async with runtime.transaction() as session:
        return await report.send_all(session, which, settings)


# Frequently bought together's jobs live in their own module; importing it declares them.
from selfmart.analytics import basket_tasks as _basket_tasks  # noqa: E402, F401
