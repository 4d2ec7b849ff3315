"""The orders domain's background jobs: closing unpaid orders, working abnormal orders
automatically, and the xlsx export with progress."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor, job_actor
from selfmart.iam.permissions import Perm
from selfmart.jobs import runtime
from selfmart.jobs import service as jobs
from selfmart.jobs.registry import Cron, Every, task
from selfmart.kit import aftercommit
from selfmart.orders import export, issues, partitioning, service

CLOSE_UNPAID = "orders.close_unpaid"
EXPORT = "orders.export"
WORK_ISSUES = "orders.work_issues"
PARTITIONS_AHEAD = "orders.partitions_ahead"


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


@task(PARTITIONS_AHEAD, schedule=[Cron("20 3 * * *")])
async def partitions_ahead() -> list[str]:
    """Nightly, once the order lines are partitioned (PostgreSQL): the months ahead exist."""
    async with runtime.sessionmaker()() as session:
        if not await partitioning.is_partitioned(session):
            return []
        made = await partitioning.ensure_months(session)
        await _commit(session)
    return made


@jobs.job(EXPORT)
async def export_orders(run: jobs.RunningJob) -> dict[str, Any]:
    """A large export: the file is written under media_dir/exports with progress reported as
    rows are read; the console downloads it when the run has succeeded."""
    params = run.params
    actor = Actor(
        kind="user",
        id=run.created_by,
        name=str(params.get("actor_name", "")),
        # Phones are written whole only for someone who may see them (order:pii).
        permissions=frozenset(
            {Perm.ORDER_EXPORT.value, *([Perm.ORDER_PII.value] if params.get("pii") else [])}
        ),
        store_ids=None if params["store_ids"] is None else frozenset(params["store_ids"]),
    )
    filters = export.filters_from_params(params["filters"])
    factory = runtime.sessionmaker()
    total = await export.count(factory, filters, actor)
    await run.progress(0, total)
    path = export.export_path(runtime.settings().media_dir, run.id)

    async def progress(n: int) -> None:
        await run.progress(n, total)

    rows = await export.write_file(
        factory, filters, actor, path, lang=str(params.get("lang", "zh-CN")), on_progress=progress
    )
    await run.progress(rows, total)
    return {"rows": rows, "file": path.name}
