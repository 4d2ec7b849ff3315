"""`seed-demo`'s customers pay through the payment sandboxes: the demo's payments are WeChat,
Alipay and card payments the sandboxes hold as paid trades for the same amounts (kept on disk
for the server that starts next), and its refunds went back through them and settled."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import Settings
from selfmart.models import Order, Payment, Refund
from selfmart.orders.demo import CLIENT_PREFIX
from selfmart.sandbox.alipay.state import sandbox_for as alipay_sandbox
from selfmart.sandbox.unionpay.state import sandbox_for as unionpay_sandbox
from selfmart.sandbox.wechatpay.state import STATE
from tests.support import SeededDemo


@pytest.fixture
def demo_settings(seeded_demo: SeededDemo) -> Iterator[Settings]:
    """The settings the demo was seeded with, and WeChat's sandbox on the trades it left on
    disk (its state is the process's one, which other tests bind to their own directories)."""
    before = STATE.root
    STATE.bind(seeded_demo.settings.payment_sandbox_dir / "wechatpay")
    yield seeded_demo.settings
    if before is None:
        STATE.unbind()
    else:
        STATE.bind(before)


async def test_demo_orders_are_paid_and_refunded_through_the_sandboxes(
    demo_session: AsyncSession, demo_settings: Settings
) -> None:
    settings = demo_settings
    # the demo's own orders (on PostgreSQL other tests' committed payments share the database)
    demo_orders = select(Order.id).where(Order.client_order_id.like(f"{CLIENT_PREFIX}%"))
    paid = (
        await demo_session.scalars(
            select(Payment).where(Payment.status == "succeeded", Payment.order_id.in_(demo_orders))
        )
    ).all()
    by_channel: dict[str, list[Payment]] = {}
    for p in paid:
        by_channel.setdefault(p.channel, []).append(p)
    assert {"wechat", "alipay", "card"} <= set(by_channel)
    # on the manual channel only what no platform would charge: the overpaid abnormal order
    assert len(by_channel.get("manual", [])) <= 1

    wechat = STATE.transactions
    for p in by_channel["wechat"]:
        trade = wechat[p.out_trade_no or ""]
        assert (trade.total, trade.trade_state) in {
            (p.amount_fen, "SUCCESS"),
            (p.amount_fen, "REFUND"),
        }
        assert trade.transaction_id == p.channel_txn_id
    alipay = alipay_sandbox(settings).trades
    for p in by_channel["alipay"]:
        ali = alipay[p.out_trade_no or ""]
        assert ali.total_fen == p.amount_fen
        assert ali.trade_no == p.channel_txn_id
    card = {t.query_id: t for t in unionpay_sandbox(settings).txns.values()}
    for p in by_channel["card"]:
        txn = card[p.channel_txn_id or ""]
        assert (txn.order_id, txn.amount_fen, txn.result) == (p.out_trade_no, p.amount_fen, "00")

    # refunds went back through the platforms and settled there
    refunds = (
        await demo_session.scalars(
            select(Refund).where(Refund.account_id.is_not(None), Refund.order_id.in_(demo_orders))
        )
    ).all()
    assert refunds
    assert {r.status for r in refunds} == {"succeeded"}
    assert all(r.channel_refund_id for r in refunds)
    assert (
        await demo_session.scalar(
            select(func.count())
            .select_from(Refund)
            .where(Refund.status == "pending", Refund.order_id.in_(demo_orders))
        )
        == 0
    )
