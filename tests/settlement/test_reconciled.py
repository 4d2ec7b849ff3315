"""Store settlement over a bill reconciled for real: orders paid and refunded through the
WeChat Pay sandbox, its bill downloaded and matched, then the day's settlement takes that
bill's money and fees, and counts a payment made after the bill from our own records."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.models import Refund
from selfmart.payments import tasks
from selfmart.reconciliation import fees, runs
from tests.builders import auth_headers, make_user
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import open_shop, today
from tests.support import settings_for

ACTOR = job_actor("test.settlement")


def fee(fen: int) -> int:
    """The sandbox's 0.60%, rounded half up."""
    return (fen * 6 + 500) // 1000


async def test_a_reconciled_day_settles_from_its_bill(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    shop = await open_shop(session, wechat)
    two = await shop.paid(client, session, 2)  # 700
    one = await shop.paid(client, session, 1)  # 350
    h = await auth_headers(session, await make_user(session, role="finance"))
    admin = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{two.order_id}/refunds",
        json={"full": True, "reason": "顾客退货"},
        headers=admin,
    )
    assert r.status_code in (200, 201), r.text
    await asyncio.sleep(0.1)  # the sandbox settles refunds after a moment
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS)) == 1
    refund = await session.scalar(select(Refund).where(Refund.payment_id == two.id))
    assert refund is not None
    await session.refresh(refund)
    assert refund.status == "succeeded"

    await fees.set_rate(session, shop.account, 60, actor=ACTOR)
    run = await runs.reconcile(session, shop.account, today(), actor=ACTOR)
    assert (run.status, run.difference_count) == ("reconciled", 0)
    later = await shop.paid(client, session, 3)  # 1,050, after the bill was matched
    assert later.amount_fen == 1050

    day = today().isoformat()
    r = await client.get(
        f"/api/v1/settlement/stores?date_from={day}&date_to={day}&store_id={shop.store.id}",
        headers=h,
    )
    assert r.status_code == 200, r.text
    rows = {row["source"]: row for row in r.json()["rows"]}
    assert set(rows) == {"bill", "ours"}
    billed = rows["bill"]
    assert (billed["lines"], billed["sales_fen"], billed["refunds_fen"]) == (3, 1050, 700)
    assert billed["fees_fen"] == fee(700) + fee(350) - fee(700) == run.bill_fee_fen
    assert billed["net_fen"] == run.bill_gross_fen - run.bill_refund_fen - run.bill_fee_fen
    assert billed["fees_estimated"] is False
    ours = rows["ours"]
    assert (ours["lines"], ours["sales_fen"], ours["fees_fen"], ours["fees_estimated"]) == (
        1, 1050, fee(1050), True,
    )  # fmt: skip

    r = await client.get(f"/api/v1/settlement/fees?date_from={day}&date_to={day}", headers=h)
    [row] = r.json()
    assert (row["store_id"], row["rate_bp"], row["fee_fen"], row["expected_fee_fen"]) == (
        shop.store.id, 60, run.bill_fee_fen, run.bill_fee_fen,
    )  # fmt: skip
    assert row["flagged"] is False
    assert one.amount_fen == 350
