"""The analytics domain's background job: the incremental refresh of the sales summaries."""

from __future__ import annotations

from selfmart.analytics import refresh
from selfmart.jobs import runtime
from selfmart.jobs.registry import Every, task

REFRESH = "analytics.refresh"


@task(REFRESH, schedule=[Every(60)])
async def refresh_summaries() -> int:
    """Every minute: recompute the store days whose orders changed since the last run."""
    async with runtime.sessionmaker()() as session:
        days = await refresh.refresh(session)
        await session.commit()
    return days


# Frequently bought together's jobs live in their own module; importing it declares them.
from selfmart.analytics import basket_tasks as _basket_tasks  # noqa: E402, F401
