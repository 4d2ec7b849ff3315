"""Old basket analyses are deleted by the nightly run with their rules: nightly ones after 90
days, those started by hand after `analytics_manual_basket_run_keep_days` (a year by
default); younger ones stay."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import baskets
from selfmart.config import get_settings
from selfmart.iam.actor import job_actor
from selfmart.kit.time import utcnow
from selfmart.models import BasketRule, BasketRun
from tests.builders import make_store


async def _run(session: AsyncSession, trigger: str, age_days: int, first_day: date) -> BasketRun:
    run = BasketRun(
        store_id=None, first_day=first_day, last_day=first_day + timedelta(days=6),
        min_support=0.01, min_confidence=0.1, min_lift=0, max_len=2, trigger=trigger,
        status="succeeded", baskets=10, products=2, itemsets=3, rules=1, truncated=False,
        created_at=utcnow() - timedelta(days=age_days),
    )  # fmt: skip
    session.add(run)
    await session.flush()
    session.add(
        BasketRule(
            run_id=run.id, size=2, antecedent=[1], consequent=[2], antecedent_first=1, p1=1,
            p2=2, p3=None,
            p4=None, count=5, antecedent_count=6, consequent_count=7, support=0.5,
            confidence=0.8, lift=1.1,
        )
    )  # fmt: skip
    await session.flush()
    return run


async def _windows(session: AsyncSession) -> set[tuple[str, date]]:
    rows = await session.execute(select(BasketRun.trigger, BasketRun.first_day))
    return {(r.trigger, r.first_day) for r in rows.all()}


async def test_old_runs_go_with_their_rules(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_store(session)
    await _run(session, "manual", 366, date(2024, 1, 1))
    await _run(session, "manual", 364, date(2024, 2, 1))
    await _run(session, "nightly", 91, date(2024, 3, 1))
    await _run(session, "nightly", 89, date(2024, 4, 1))
    await baskets.nightly(session, actor=job_actor("test"))
    left = await _windows(session)
    assert ("manual", date(2024, 1, 1)) not in left
    assert ("nightly", date(2024, 3, 1)) not in left
    assert {("manual", date(2024, 2, 1)), ("nightly", date(2024, 4, 1))} <= left
    # Rules of the deleted runs went with them: every rule left belongs to a run left.
    runs = set((await session.scalars(select(BasketRun.id))).all())
    rules = set((await session.scalars(select(BasketRule.run_id))).all())
    assert len(rules) == 2
    assert rules <= runs

    # A shorter retention, set by the operator.
    monkeypatch.setenv("SELFMART_ANALYTICS_MANUAL_BASKET_RUN_KEEP_DAYS", "30")
    get_settings.cache_clear()
    try:
        await baskets.nightly(session, actor=job_actor("test"))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert ("manual", date(2024, 2, 1)) not in await _windows(session)
