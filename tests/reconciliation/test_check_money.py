"""The money ties out (`selfmart check-money`): after a day of WeChat Pay sales, a declined
payment code paid again, a sale paid by hand and refunded in full, every store day's orders
agree with the payments and refunds, and the reconciled bill has nothing unresolved; a payment
recorded for more than its order took, or a difference left open, is named."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from selfmart.db import make_sessionmaker
from selfmart.kit.time import utcnow
from selfmart.models import PaymentAccount, ReconciliationItem, ReconciliationRun
from selfmart.reconciliation import differences, reports, runs
from selfmart.reconciliation.checks import check_money
from tests.builders import auth_headers, make_user
from tests.orders.builders import make_order
from tests.payments.builders import make_payment_account
from tests.payments.test_terminal_pay import pay
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import ACTOR, open_shop, today


async def test_a_day_of_mixed_sales_refunds_and_failures_ties_out(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    shop = await open_shop(session, wechat)
    sale = await shop.paid(client, session, 2)
    await shop.paid(client, session, 1)
    codes = wechat.credentials()["test_auth_codes"]
    # Declined first, paid on the second try.
    retried = await make_order(
        session, shop.store, [(shop.product, 1)], terminal=shop.creds.terminal
    )
    r = await pay(
        client, shop.creds, retried.order_no, attempt_id="D1", auth_code=codes["declined"]
    )
    assert r.json()["state"] == "failed", r.text
    r = await pay(client, shop.creds, retried.order_no, attempt_id="D2", auth_code=codes["success"])
    assert r.json()["state"] == "paid", r.text
    # Paid by hand, then refunded in full.
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    by_hand = await make_order(
        session, shop.store, [(shop.product, 3)], terminal=shop.creds.terminal
    )
    r = await client.post(
        f"/api/v1/orders/{by_hand.id}/payments", json={"note": "cash"}, headers=headers
    )
    assert r.status_code in (200, 201), r.text
    r = await client.post(
        f"/api/v1/orders/{by_hand.id}/refunds",
        json={"full": True, "reason": "returned"},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    # Never paid at all.
    await make_order(session, shop.store, [(shop.product, 1)], terminal=shop.creds.terminal)
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (run.status, run.difference_count) == ("reconciled", 0)

    report = await check_money(session, day=today())
    assert report.lines() == []
    assert report.ok
    # At least this shop's day (tests of concurrency commit orders of today in stores of
    # their own on the same PostgreSQL database; theirs tie out too). One bill: this shop's.
    assert report.store_days >= 1
    assert report.bill_days == 1

    # A payment recorded for more than its order took: named with its store and day.
    sale.amount_fen += 100
    await session.flush()
    report = await check_money(session, day=today())
    (line,) = [x for x in report.lines() if x.startswith("MISMATCH")]
    assert f"store={shop.store.code}" in line
    assert f"day={today()}" in line
    assert "orders paid 2450 - refunded 1050 = 1400 fen, but payments captured 2550" in line

    # Its bill now disagrees too: an open difference does not tie out until resolved.
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    report = await check_money(session, day=today())
    (line,) = [x for x in report.lines() if x.startswith("UNRESOLVED")]
    assert f"id {shop.account.id}" in line
    assert "amount_differs 1" in line
    (item,) = await session.scalars(
        select(ReconciliationItem.id).where(
            ReconciliationItem.run_id == run.id, ReconciliationItem.difference != "matched"
        )
    )
    await differences.resolve(session, item, "accept", "recorded wrongly", actor=ACTOR)
    sale.amount_fen -= 100
    await session.flush()
    assert (await check_money(session, day=today())).ok
    # Another day has none of it.
    other = await check_money(session, day=today().replace(year=2001))
    assert (other.ok, other.store_days, other.bill_days) == (True, 0, 0)


def _check(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SELFMART_DATABASE_URL": url, "SELFMART_LOG_LEVEL": "WARNING"}
    return subprocess.run(  # noqa: ASYNC221  (a CLI run to completion is the point)
        [sys.executable, "-m", "selfmart.cli", "check-money", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_the_command_exits_non_zero_naming_what_does_not_tie_out(
    engine: AsyncEngine,
) -> None:
    """The command opens its own connection: what it must see is committed (on a day long
    past, so that nothing else is on it) and removed afterwards."""
    factory = make_sessionmaker(engine)
    day = today().replace(year=2001)
    async with factory() as s:
        account = await make_payment_account(s, None, "alipay")
        account.name = "check-money test"
        await s.flush()
        run = ReconciliationRun(
            account_id=account.id, channel="alipay", bill_date=day, kind="trade",
            status="reconciled", attempts=1, started_at=utcnow(), line_count=1,
            difference_count=1, bill_gross_fen=100, bill_refund_fen=0, bill_fee_fen=0,
            our_gross_fen=0, our_refund_fen=0, actor_name="test",
        )  # fmt: skip
        s.add(run)
        await s.flush()
        s.add(
            ReconciliationItem(
                run_id=run.id, difference="platform_only", state="open", kind="payment",
                line_no=2, out_trade_no="NOT-OURS-1", bill_amount_fen=100, detail="", line={},
            )
        )  # fmt: skip
        await s.commit()
        account_id = account.id
    url = engine.url.render_as_string(hide_password=False)
    try:
        done = _check(url, "--date", day.isoformat())
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"UNRESOLVED alipay account=check-money test (id {account_id}) day={day}" in (
            done.stdout
        )
        assert "platform_only 1" in done.stdout
        assert "do not tie out" in done.stderr
        clean = _check(url, "--date", (day.replace(month=1, day=1)).isoformat())
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "money ties out: 0 store day(s), 0 reconciled bill(s)" in clean.stdout
        bad = _check(url, "--date", "2001-02-30")
        assert bad.returncode == 2
        assert "--date" in bad.stderr
    finally:
        async with factory() as s:
            await s.execute(
                delete(ReconciliationRun).where(ReconciliationRun.account_id == account_id)
            )
            await s.execute(delete(PaymentAccount).where(PaymentAccount.id == account_id))
            await s.commit()


async def test_calendar_and_check_money_agree_on_a_day_with_a_held_item(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """One rule: a difference held for the next day's bill leaves its day unsettled (calendar
    `open` with the held count; check-money names it) until the next day's bill carries it;
    a day the platform had no bill for is checked as any other."""
    shop = await open_shop(session, wechat)
    day = today()
    eve = day - timedelta(days=1)
    await shop.paid_before_midnight(client, session, day)

    async def calendar_cell() -> dict[str, Any]:
        cal = await reports.calendar(session, actor=ACTOR, date_from=eve, date_to=eve)
        cells: list[dict[str, Any]] = cal["cells"]
        (cell,) = [c for c in cells if c["account_id"] == shop.account.id]
        return cell

    async def unresolved() -> list[str]:
        report = await check_money(session, day=eve)
        return [
            x for x in report.lines()
            if x.startswith("UNRESOLVED") and f"(id {shop.account.id})" in x
        ]  # fmt: skip

    before = await runs.reconcile(session, shop.account, eve, actor=ACTOR)
    assert before.status == "no_bill"  # the platform had nothing that day
    cell = await calendar_cell()
    assert (cell["status"], cell["open"], cell["held"]) == ("open", 0, 1)
    (line,) = await unresolved()
    assert "ours_only 1; 1 held for the next day's bill" in line

    await runs.reconcile(session, shop.account, day, actor=ACTOR)  # carries it
    cell = await calendar_cell()
    assert (cell["status"], cell["open"], cell["held"]) == ("no_bill", 0, 0)
    assert await unresolved() == []
