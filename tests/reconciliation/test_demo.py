"""`seed-demo` reconciles its month: every sandbox account's bill of each past day of the
demo's history is reconciled (a day nobody paid on that channel has "no bill"), the demo's
payments and refunds all match, fees included, and a second seed adds no run."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.demo import seed_demo
from selfmart.models import Payment, PaymentAccount, ReconciliationItem, ReconciliationRun
from selfmart.orders.demo import CLIENT_PREFIX, HISTORY_DAYS
from selfmart.reconciliation.bills import BEIJING
from tests.support import SeededDemo


async def test_the_demo_month_is_reconciled_and_matches(
    demo_session: AsyncSession, seeded_demo: SeededDemo
) -> None:
    session = demo_session
    today = seeded_demo.seeded_at.astimezone(BEIJING).date()
    accounts = (
        await session.scalars(
            select(PaymentAccount).where(
                PaymentAccount.store_id.is_(None), PaymentAccount.channel != "manual"
            )
        )
    ).all()
    assert {a.channel for a in accounts} == {"wechat", "alipay", "card"}
    runs = (
        await session.scalars(
            select(ReconciliationRun).where(
                ReconciliationRun.account_id.in_([a.id for a in accounts])
            )
        )
    ).all()
    days = {today - timedelta(days=back) for back in range(1, HISTORY_DAYS + 1)}
    for account in accounts:
        kinds = ("trade", "fundflow") if account.channel == "wechat" else ("trade",)
        for kind in kinds:
            mine = [r for r in runs if r.account_id == account.id and r.kind == kind]
            assert {r.bill_date for r in mine} == days, (account.channel, kind)
            assert {r.status for r in mine} <= {"reconciled", "no_bill"}, (account.channel, kind)
            assert all(r.last_error is None for r in mine), [r.last_error for r in mine]
        trade = [r for r in runs if r.account_id == account.id and r.kind == "trade"]
        assert sum(r.status == "reconciled" for r in trade) >= 10, account.channel
        # the fees each sandbox charged are the rate the demo configured
        assert all(r.bill_fee_fen == r.expected_fee_fen for r in trade if r.line_count), (
            account.channel
        )
    items = (
        await session.execute(
            select(ReconciliationItem.difference, func.count())
            .where(ReconciliationItem.run_id.in_([r.id for r in runs]))
            .group_by(ReconciliationItem.difference)
        )
    ).all()
    assert dict(items).keys() == {"matched"}
    # every demo payment taken at a platform before today is in its day's bill, and matched
    midnight = datetime.combine(today, time(0), tzinfo=BEIJING)
    demo_paid = set(
        (
            await session.scalars(
                select(Payment.id).where(
                    Payment.channel != "manual",
                    Payment.succeeded_at.is_not(None),
                    Payment.succeeded_at < midnight,
                    Payment.attempt_id.like(f"{CLIENT_PREFIX}%"),
                )
            )
        ).all()
    )
    assert len(demo_paid) > 50
    matched = set(
        (
            await session.scalars(
                select(ReconciliationItem.payment_id).where(
                    ReconciliationItem.run_id.in_([r.id for r in runs if r.kind == "trade"]),
                    ReconciliationItem.kind == "payment",
                )
            )
        ).all()
    )
    assert matched == demo_paid

    before = len(runs)
    await seed_demo(session)
    assert await session.scalar(select(func.count()).select_from(ReconciliationRun)) == before
