"""Helpers for the alerts tests: a rule made through the service, and one evaluation run."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.alerts import evaluate, service
from selfmart.alerts.metrics import HostSample
from selfmart.alerts.schemas import AlertRuleCreate
from selfmart.iam.actor import job_actor
from selfmart.kit.time import clock_at
from selfmart.models import Alert, AlertRule
from selfmart.monitoring.overview import HttpTotals
from tests.builders import make_user
from tests.support import settings_for

ACTOR = job_actor("tests")
QUIET_HOST = HostSample(cpu_percent=1.0, memory_percent=1.0, disk_percent=1.0)
NO_HTTP = HttpTotals()


async def make_rule(session: AsyncSession, metric: str, threshold: float, **fields: Any) -> int:
    if "user_ids" not in fields and "role_ids" not in fields:
        user = await make_user(session, email=f"ops-{uuid.uuid4().hex[:8]}@example.cn")
        fields["user_ids"] = [user.id]
    fields.setdefault("channels", ["in_app"])
    rule = await service.create_rule(
        session,
        AlertRuleCreate(name=f"{metric} {threshold}", metric=metric, threshold=threshold, **fields),
        actor=ACTOR,
    )
    return rule.id


async def run(
    session: AsyncSession,
    at: datetime,
    *,
    host: HostSample = QUIET_HOST,
    http: HttpTotals | None = NO_HTTP,
) -> evaluate.Report:
    """One evaluation at `at` (the services' clock pinned there)."""
    with clock_at(at):
        return await evaluate.evaluate(
            session, settings_for("sqlite://"), now=at, host=host, http=http
        )


async def alerts_of(session: AsyncSession, rule_id: int) -> list[Alert]:
    rows = await session.scalars(select(Alert).where(Alert.rule_id == rule_id).order_by(Alert.id))
    return list(rows.all())


async def fired(session: AsyncSession, rule_id: int) -> bool:
    return any(a.status == "open" for a in await alerts_of(session, rule_id))


async def disable_all(session: AsyncSession) -> None:
    """Rules of earlier steps of a test stay out of the next evaluation."""
    for rule in (await session.scalars(select(AlertRule))).all():
        rule.enabled = False
    await session.flush()
