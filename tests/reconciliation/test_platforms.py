"""Alipay end to end: a terminal pays through its sandbox with the chain's account as
`seed-demo` configures it, and that day's bill (Alipay's GBK zip) is downloaded through the
account and reconciled: one payment matched, one whose amount we hold wrongly reported.
(UnionPay's terminal pay route does not take card payments yet; its bill reader is tested on
the files its encoder writes, in test_bills.py.)"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import job_actor
from selfmart.models import Payment, PaymentAccount, ReconciliationItem
from selfmart.payments import sandboxes
from selfmart.reconciliation import runs
from tests.builders import make_store
from tests.orders.builders import make_order, make_product
from tests.payments.test_terminal_pay import pay
from tests.payments.wechatpay.support import Sandbox
from tests.reconciliation.test_reconcile import today
from tests.terminals.builders import make_active_terminal

ACTOR = job_actor("test.reconcile")


@pytest.mark.parametrize(("channel", "mode"), [("alipay", "code")])
async def test_a_day_paid_through_the_sandbox_is_reconciled(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox, channel: str, mode: str
) -> None:
    # the server serves every sandbox; the WeChat one is emptied by the fixture, this one here
    async with httpx.AsyncClient(timeout=10) as http:
        reset = await http.post(f"{wechat.url}/sandbox/alipay/_control/reset")
    assert reset.status_code in (200, 204), reset.text
    await sandboxes.configure_demo(session, wechat.settings)
    account = await session.scalar(
        select(PaymentAccount).where(
            PaymentAccount.channel == channel, PaymentAccount.store_id.is_(None)
        )
    )
    assert account is not None
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    code = sandboxes.credentials(wechat.settings)[channel]["test_auth_codes"]["success"]
    paid: list[Payment] = []
    for n in (1, 2):
        order = await make_order(session, store, [(cola, n)], terminal=creds.terminal)
        r = await pay(
            client, creds, order.order_no, channel=channel, mode=mode, auth_code=code,
            attempt_id=f"A{n}",
        )  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "paid", r.text
        payment = await session.get(Payment, r.json()["payment_id"])
        assert payment is not None
        paid.append(payment)
    wrong = paid[1]
    wrong.amount_fen = 9_999
    await session.flush()

    run = await runs.reconcile(session, account, today(), actor=ACTOR)
    assert (run.status, run.last_error) == ("reconciled", None)
    items = (
        await session.scalars(
            select(ReconciliationItem)
            .where(ReconciliationItem.run_id == run.id)
            .order_by(ReconciliationItem.id)
        )
    ).all()
    assert sorted((i.difference, i.out_trade_no) for i in items) == sorted(
        [("matched", paid[0].out_trade_no), ("amount_differs", wrong.out_trade_no)]
    )
    diff = next(i for i in items if i.difference == "amount_differs")
    assert (diff.our_amount_fen, diff.bill_amount_fen, diff.payment_id) == (
        9_999,
        700,
        wrong.id,
    )
    assert run.bill_gross_fen == 350 + 700
