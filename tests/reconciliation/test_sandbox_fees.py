"""The demo's sandbox accounts come with the fee rate each sandbox charges (`seed-demo` adopts
it), so that a demo day's reconciliation checks the fees: every line's fee as expected, our
expected fees equal to the bill's, and our net equal to what the platform paid out. Without a
rate the fee check has nothing to hold the bill to and our net leaves the fees out."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import job_actor
from selfmart.models import PaymentAccount, ReconciliationItem
from selfmart.payments import sandboxes
from selfmart.reconciliation import fees, reports, runs
from selfmart.sandbox import alipay, unionpay, wechatpay
from tests.builders import make_store
from tests.orders.builders import make_order, make_product
from tests.payments.test_terminal_pay import pay
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import today
from tests.terminals.builders import make_active_terminal

ACTOR = job_actor("test.reconcile")


def test_each_sandbox_says_the_rate_its_bills_charge() -> None:
    assert sandboxes.fee_rates() == {
        "wechat": wechatpay.FEE_RATE_BP,
        "alipay": alipay.FEE_RATE_BP,
        "card": unionpay.FEE_RATE_BP,
    }
    assert (wechatpay.FEE_RATE_BP, alipay.FEE_RATE_BP, unionpay.FEE_RATE_BP) == (60, 60, 50)


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
async def test_a_sandbox_day_reconciles_with_its_fees_checked(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox, channel: str
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        reset = await http.post(f"{wechat.url}/sandbox/alipay/_control/reset")
    assert reset.status_code in (200, 204), reset.text
    configured = await sandboxes.configure_demo(session, wechat.settings)
    adopted = await fees.adopt_sandbox_rates(session, configured, actor=ACTOR)
    assert sorted(r.rate_bp for r in adopted) == [50, 60, 60]
    account = await session.scalar(
        select(PaymentAccount).where(
            PaymentAccount.channel == channel, PaymentAccount.store_id.is_(None)
        )
    )
    assert account is not None
    assert await fees.rate_of(session, account.id) == 60

    store = await make_store(session)
    # 0.6% of 1,999 fen is 11.994: rounded to 12; of 2 x 1,999 = 3,998, 23.988: 24
    juice = await make_product(session, stores=[store], price_fen=1_999)
    creds = await make_active_terminal(session, store)
    code = sandboxes.credentials(wechat.settings)[channel]["test_auth_codes"]["success"]
    for n in (1, 2):
        order = await make_order(session, store, [(juice, n)], terminal=creds.terminal)
        r = await pay(
            client, creds, order.order_no, channel=channel, mode="code", auth_code=code,
            attempt_id=f"F{n}",
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "paid", r.text

    run = await runs.reconcile(session, account, today(), actor=ACTOR)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = (
        await session.scalars(select(ReconciliationItem).where(ReconciliationItem.run_id == run.id))
    ).all()
    assert sorted((i.difference, i.bill_fee_fen, i.expected_fee_fen) for i in items) == [
        ("matched", 12, 12),
        ("matched", 24, 24),
    ]
    assert (run.bill_fee_fen, run.expected_fee_fen) == (36, 36)
    day = [
        t
        for t in await reports.totals(session, actor=ACTOR, date_from=today(), date_to=today())
        if t["channel"] == channel and t["kind"] == "trade"
    ]
    assert len(day) == 1
    # our net (gross - refunds - fees at our rate) is what the platform paid out
    assert (day[0]["expected_fee_fen"], day[0]["our_net_fen"]) == (36, day[0]["bill_net_fen"])
    assert day[0]["our_net_fen"] == 1_999 * 3 - 36
