"""The orders domain's background jobs: closing unpaid orders, working abnormal orders
automatically, and the xlsx export with progress."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.jobs.registry import Every, task
from selfmart.kit import aftercommit
from selfmart.orders import issues, service

CLOSE_UNPAID = "orders.close_unpaid"
WORK_ISSUES = "orders.work_issues"


async def _commit(session: AsyncSession) -> None:
    await session.commit()
    await aftercommit.run_pending(session)


@task(CLOSE_UNPAID, schedule=[Every(60)])
async def close_unpaid() -> int:
    """Every minute: close the orders whose payment timed out, a batch per transaction."""
    actor = job_actor(CLOSE_UNPAID)
    total = 0
    while True:
        async with runtime.sessionmaker()() as session:
            closed = await service.close_expired(session, actor=actor)
            await _commit(session)
        total += len(closed)
        if not closed:
            return total


@task(WORK_ISSUES, schedule=[Every(60)])
async def work_issues() -> int:
    """Every minute: the automatic rules (re-query the platform) before anyone is bothered."""
    async with runtime.sessionmaker()() as session:
        worked = await issues.run_automatic_rules(session, actor=job_actor(WORK_ISSUES))
        await _commit(session)
    return worked
