"""Each metric a rule may watch fires at its threshold and not when the reading is one below
it (rule `≥ V` fires, rule `≥ V+1` does not, in the same evaluation), read from real rows
through the owning domains on both databases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.alerts.metrics import HostSample
from selfmart.jobs import service as jobs
from selfmart.kit.time import UTC
from selfmart.models import OutboxEvent, Payment, ReconciliationItem, ReconciliationRun
from selfmart.monitoring import metrics as prom
from selfmart.monitoring.overview import HttpTotals
from tests.builders import make_store
from tests.orders.builders import make_order
from tests.payments.builders import make_payment_account
from tests.terminals.builders import make_terminal

from .support import QUIET_HOST, fired, make_rule, run

#: 12:00 in Shanghai
NOON = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


@dataclass
class Setup:
    value: float
    rule: dict[str, Any] = field(default_factory=dict)
    host: HostSample = QUIET_HOST
    http: HttpTotals | None = HttpTotals()


Maker = Callable[[AsyncSession], Awaitable[Setup]]


async def _cpu(session: AsyncSession) -> Setup:
    return Setup(93.5, host=HostSample(93.5, 1, 1))


async def _memory(session: AsyncSession) -> Setup:
    return Setup(81.0, host=HostSample(1, 81.0, 1))


async def _disk(session: AsyncSession) -> Setup:
    return Setup(90.0, host=HostSample(1, 1, 90.0))


async def _error_rate(session: AsyncSession) -> Setup:
    return Setup(5.0, http=HttpTotals(requests=200, errors=10))


async def _p95(session: AsyncSession) -> Setup:
    # 100 requests between 0.25 s and 0.5 s: the 95th is interpolated at 487.5 ms
    buckets = ((0.1, 0.0), (0.25, 0.0), (0.5, 100.0), (float("inf"), 100.0))
    return Setup(487.5, http=HttpTotals(requests=100, buckets=buckets))


async def _backlog(session: AsyncSession) -> Setup:
    before = await jobs.backlog(session, NOON)
    for _ in range(3):
        event = OutboxEvent(topic="test.nothing", payload={}, created_at=NOON, available_at=NOON)
        session.add(event)
    await session.flush()
    return Setup(float(before.depth + 3))


async def _lag(session: AsyncSession) -> Setup:
    before = await jobs.backlog(session, NOON)
    waited = timedelta(seconds=before.lag_seconds + 120)
    session.add(
        OutboxEvent(
            topic="test.nothing", payload={}, created_at=NOON - waited, available_at=NOON - waited
        )
    )
    await session.flush()
    return Setup(waited.total_seconds())


async def _terminal_offline(session: AsyncSession) -> Setup:
    store = await make_store(session)
    await make_terminal(session, store, status="active", last_seen_at=NOON - timedelta(minutes=10))
    # a disabled terminal's silence is no alert
    await make_terminal(session, store, status="disabled", last_seen_at=NOON - timedelta(days=1))
    return Setup(10.0, rule={"store_id": store.id})


async def _no_orders(session: AsyncSession) -> Setup:
    store = await make_store(session, opening_hours="08:00-22:00", timezone="Asia/Shanghai")
    await make_order(session, store, [], created_at=NOON - timedelta(minutes=45))
    return Setup(45.0, rule={"store_id": store.id})


async def _payment_failures(session: AsyncSession) -> Setup:
    store = await make_store(session)
    order = await make_order(session, store, [])
    for i, status in enumerate(["failed", "succeeded", "succeeded", "succeeded", "pending"]):
        session.add(
            Payment(
                order_id=order.id,
                store_id=store.id,
                channel="wechat",
                status=status,
                amount_fen=350,
                created_at=NOON - timedelta(minutes=i + 1),
                actor_type="terminal",
                actor_name="t",
            )
        )
    # outside the 15-minute window: not counted
    session.add(
        Payment(
            order_id=order.id,
            store_id=store.id,
            channel="wechat",
            status="failed",
            amount_fen=350,
            created_at=NOON - timedelta(minutes=16),
            actor_type="terminal",
            actor_name="t",
        )
    )
    await session.flush()
    return Setup(25.0, rule={"store_id": store.id, "window_minutes": 15})


async def _reconciliation(session: AsyncSession) -> Setup:
    store = await make_store(session)
    account = await make_payment_account(session, store)
    run_ = ReconciliationRun(
        account_id=account.id,
        channel="wechat",
        bill_date=date(2026, 12, 6),
        kind="trade",
        status="reconciled",
        started_at=NOON,
    )
    session.add(run_)
    await session.flush()
    for state in ("open", "open", "resolved", "ok"):
        session.add(
            ReconciliationItem(
                run_id=run_.id,
                difference="ours_only",
                state=state,
                kind="payment",
                store_id=store.id,
            )
        )
    await session.flush()
    return Setup(2.0, rule={"store_id": store.id})


CASES: dict[str, Maker] = {
    "cpu_percent": _cpu,
    "memory_percent": _memory,
    "disk_percent": _disk,
    "error_rate": _error_rate,
    "p95_ms": _p95,
    "job_backlog": _backlog,
    "job_lag_seconds": _lag,
    "terminal_offline_minutes": _terminal_offline,
    "store_no_orders_minutes": _no_orders,
    "payment_failure_rate": _payment_failures,
    "reconciliation_open": _reconciliation,
}


def test_every_metric_is_tested() -> None:
    from selfmart.alerts.metrics import METRICS

    assert set(CASES) == set(METRICS)


@pytest.mark.parametrize("metric", list(CASES))
async def test_fires_at_the_threshold_and_not_one_below(session: AsyncSession, metric: str) -> None:
    setup = await CASES[metric](session)
    at = await make_rule(session, metric, setup.value, comparison="gte", **setup.rule)
    above = await make_rule(session, metric, setup.value + 1, comparison="gte", **setup.rule)
    report = await run(session, NOON, host=setup.host, http=setup.http)
    assert await fired(session, at), metric
    assert not await fired(session, above), metric
    assert report.fired == 1


async def test_a_store_closed_now_is_not_watched_for_orders(session: AsyncSession) -> None:
    store = await make_store(session, opening_hours="08:00-11:00", timezone="Asia/Shanghai")
    rule = await make_rule(session, "store_no_orders_minutes", 1, store_id=store.id)
    await run(session, NOON)  # 12:00: closed since 11:00
    assert not await fired(session, rule)


async def test_a_store_without_orders_counts_from_its_opening(session: AsyncSession) -> None:
    store = await make_store(session, opening_hours="22:00-06:00", timezone="Asia/Shanghai")
    # 01:00 Shanghai, open since 22:00 the day before: 180 minutes without an order
    at = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    yes = await make_rule(session, "store_no_orders_minutes", 180, store_id=store.id)
    no = await make_rule(session, "store_no_orders_minutes", 181, store_id=store.id)
    await run(session, at)
    assert await fired(session, yes)
    assert not await fired(session, no)


async def test_error_rate_and_p95_come_from_the_requests_between_two_runs(
    session: AsyncSession,
) -> None:
    await run(session, NOON, http=None)  # the baseline of this process's counters
    for _ in range(19):
        prom.REQUESTS.labels("GET", "/api/v1/alerts-test", "200").inc()
        prom.LATENCY.labels("GET", "/api/v1/alerts-test").observe(0.3)
    prom.REQUESTS.labels("GET", "/api/v1/alerts-test", "500").inc()
    prom.ERRORS.labels("GET", "/api/v1/alerts-test").inc()
    prom.LATENCY.labels("GET", "/api/v1/alerts-test").observe(0.3)
    rate = await make_rule(session, "error_rate", 5)  # 1 of 20
    slow = await make_rule(session, "p95_ms", 487)  # 19/20 of the way through 250-500 ms
    await run(session, NOON + timedelta(minutes=1), http=None)
    assert await fired(session, rate)
    assert await fired(session, slow)


@pytest.mark.parametrize(
    ("comparison", "value", "fires"),
    [("gt", 10, False), ("gt", 10.5, True), ("lt", 10, False), ("lte", 10, True)],
)
async def test_comparisons(
    session: AsyncSession, comparison: str, value: float, fires: bool
) -> None:
    rule = await make_rule(session, "cpu_percent", 10, comparison=comparison)
    await run(session, NOON, host=HostSample(value, 1, 1))
    assert await fired(session, rule) is fires
