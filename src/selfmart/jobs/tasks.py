"""The jobs domain's own background jobs: dispatching the outbox."""

from __future__ import annotations

from selfmart.jobs import outbox
from selfmart.jobs import service as _service  # noqa: F401  (registers the jobs.run handler)
from selfmart.jobs.registry import Every, task


@task(outbox.DISPATCH_JOB)
async def dispatch_outbox(event_ids: list[int]) -> int:
    """Kicked after a commit that enqueued events: dispatch just those."""
    report = await outbox.dispatch(event_ids)
    return report.claimed


@task("outbox.sweep", schedule=[Every(60)])
async def sweep_outbox() -> int:
    """Every minute: dispatch whatever is due that no kick took (crash, retry, delay)."""
    return await outbox.sweep()
