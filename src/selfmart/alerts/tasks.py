"""The alerts domain's background job: evaluating every rule once a minute."""

from __future__ import annotations

from selfmart.alerts import evaluate
from selfmart.jobs import runtime
from selfmart.jobs.registry import Every, task

EVALUATE = "alerts.evaluate"


@task(EVALUATE, schedule=[Every(60)])
async def evaluate_rules() -> int:
    """Every minute: fire, remind and resolve alerts; returns how many fired."""
    async with runtime.transaction() as session:
        report = await evaluate.evaluate(session, runtime.settings())
    if report.fired or report.resolved:
        evaluate.log.info(
            "alerts: %d fired, %d resolved, %d reminded",
            report.fired,
            report.resolved,
            report.renotified,
        )
    return report.fired
