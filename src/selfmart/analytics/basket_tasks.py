"""Frequently bought together's jobs: one run of the basket analysis (with progress), and the
nightly runs for the chain and every open store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import update

from selfmart.analytics import baskets
from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.jobs import service as jobs
from selfmart.jobs.registry import Cron, task
from selfmart.kit.time import utcnow
from selfmart.models import BasketRun

NIGHTLY = "analytics.basket_rules_nightly"


@jobs.job(baskets.JOB)
async def basket_rules(run: jobs.RunningJob) -> Mapping[str, Any]:
    run_id = int(run.params["run_id"])
    factory = runtime.sessionmaker()
    async with factory() as session:
        started = await session.scalar(
            update(BasketRun)
            .where(BasketRun.id == run_id, BasketRun.status == "queued")
            .values(status="running")
            .returning(BasketRun.id)
        )
        await session.commit()
    if started is None:
        return {"run_id": run_id, "skipped": True}

    async def report(percent: int) -> None:
        await run.progress(percent, 100)

    try:
        async with runtime.transaction() as session:
            record = await session.get(BasketRun, run_id)
            assert record is not None
            figures = await baskets.compute_run(session, record, report)
    except Exception:
        async with factory() as session:
            await session.execute(
                update(BasketRun)
                .where(BasketRun.id == run_id)
                .values(status="failed", finished_at=utcnow())
            )
            await session.commit()
        raise
    await run.progress(100, 100)
    return {"run_id": run_id, **figures}


@task(NIGHTLY, schedule=[Cron("0 3 * * *")])
async def nightly_basket_rules() -> int:
    """03:00 every night: the last 30 days' baskets of the chain and of every open store."""
    async with runtime.transaction() as session:
        ids = await baskets.nightly(session, actor=job_actor(NIGHTLY))
    return len(ids)
