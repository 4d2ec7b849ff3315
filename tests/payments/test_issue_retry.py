"""The abnormal-order queue's "retry payment" against the WeChat Pay, Alipay and UnionPay
sandboxes: a QR payment the customer let lapse is retried as a fresh attempt on the platform (a
new QR the terminal shows, which pays the order; WeChat Pay and Alipay: UnionPay has no QR); a
payment-code or card payment cannot be retried without the customer, and the queue says so
instead of offering it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import job_actor
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Order, OrderIssue, Payment
from selfmart.orders import service as orders
from tests.builders import auth_headers, make_user
from tests.payments.platforms import (
    CHANNELS,
    QR_CHANNELS,
    channel_setup,
    control,
    decide,
    present,
)
from tests.payments.test_terminal_pay import pay, state
from tests.payments.wechatpay.support import Sandbox


async def _actions(client: httpx.AsyncClient, headers: dict[str, str], issue_id: int) -> list[str]:
    r = await client.get("/api/v1/orders/issues", headers=headers)
    assert r.status_code == 200, r.text
    return next(i["actions"] for i in r.json()["items"] if i["id"] == issue_id)


#: how each platform's QR begins (what the terminal shows encodes this URL)
QR_URL = {"wechat": "weixin://", "alipay": "http"}


@pytest.mark.parametrize("channel", QR_CHANNELS)
async def test_retrying_a_lapsed_qr_payment_starts_a_fresh_attempt_that_pays(
    channel: str, client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, channel=channel, mode="qr")
    first = r.json()
    assert first["state"] == "waiting"
    await decide(wechat, channel, first["out_trade_no"], paid=False)
    placed = await session.get(Order, order.id)
    assert placed is not None
    issue = await orders.mark_payment_failed(
        session, placed, actor=job_actor("test"), reason="the customer walked away from the QR"
    )
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    assert "retry_payment" in await _actions(client, headers, issue.id)

    r = await client.post(
        f"/api/v1/orders/issues/{issue.id}/actions",
        json={"action": "retry_payment", "note": "顾客回来了"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    fresh = await session.scalar(
        select(Payment)
        .where(Payment.order_id == order.id)
        .order_by(Payment.id.desc())
        .execution_options(populate_existing=True)
    )
    assert fresh is not None
    assert (fresh.out_trade_no, fresh.mode, fresh.status) == (
        f"{order.order_no}P02",
        "qr",
        "pending",
    )
    assert fresh.amount_fen == 700
    assert (fresh.data or {}).get("pay_url", "").startswith(QR_URL[channel])
    listing = "/payments" if channel == "wechat" else "/trades"
    sandbox_payments = (await asyncio.to_thread(control, wechat, channel, "GET", listing)).json()
    assert f"{order.order_no}P02" in str(sandbox_payments)
    await session.refresh(order)
    assert order.status == "awaiting_payment"

    # The terminal's next read shows the new QR; the customer pays it.
    r = await state(client, creds, order.order_no)
    assert r.json()["attempt"]["out_trade_no"] == f"{order.order_no}P02"
    assert r.json()["attempt"]["pay_url"] == fresh.data["pay_url"]
    await decide(wechat, channel, f"{order.order_no}P02")
    await session.execute(
        update(Payment)
        .where(Payment.id == fresh.id)
        .values(updated_at=utcnow() - timedelta(minutes=1))
    )
    r = await state(client, creds, order.order_no)
    assert r.json()["attempt"]["state"] == "paid", r.text
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    started = (
        await session.scalars(
            select(AuditLog.action).where(
                AuditLog.entity_id == str(order.id), AuditLog.action == "order.payment_start"
            )
        )
    ).all()
    assert len(started) == 2  # the terminal's and the queue's, each audited


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_payment_code_payment_is_not_offered_for_retry_and_says_why(
    channel: str, client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, **present(wechat, channel, "declined"))
    assert r.json()["order_status"] == "payment_failed"
    issue = await session.scalar(select(OrderIssue).where(OrderIssue.order_id == order.id))
    assert issue is not None
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    assert "retry_payment" not in await _actions(client, headers, issue.id)
    r = await client.post(
        f"/api/v1/orders/issues/{issue.id}/actions",
        json={"action": "retry_payment"},
        headers=headers,
    )
    assert r.status_code == 409
    assert r.json()["details"][0]["reason"] == "needs_customer"
    await session.refresh(order)
    assert order.status == "payment_failed"
    assert (
        len((await session.scalars(select(Payment).where(Payment.order_id == order.id))).all()) == 1
    )
