"""The payments jobs against the WeChat Pay sandbox: a quiet pending payment is asked about
(paid without its callback), a USERPAYING code past its deadline is reversed on the platform,
a pending refund is asked about until it settles, and the abnormal-order queue's re-query
reaches the platform."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderIssue, Payment, Refund
from selfmart.orders import service as orders
from selfmart.payments import tasks
from tests.builders import auth_headers, make_user
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Sandbox
from tests.support import settings_for


async def _quiet(session: AsyncSession, payment_id: int, *, expired: bool = False) -> None:
    past = utcnow() - timedelta(minutes=5)
    values: dict[str, object] = {"updated_at": past}
    if expired:
        values["expires_at"] = past
    await session.execute(update(Payment).where(Payment.id == payment_id).values(**values))


async def test_a_paid_qr_with_no_callback_is_found_by_the_job(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    _, creds, order = await setup(session, wechat)
    r = await pay(client, creds, order.order_no, mode="qr")
    started = r.json()
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{started['out_trade_no']}/approve")
    await _quiet(session, started["payment_id"])
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.query_payments(job_actor(tasks.QUERY_PAYMENTS)) == 1
        assert await tasks.query_payments(job_actor(tasks.QUERY_PAYMENTS)) == 0
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)


async def test_user_paying_past_its_deadline_is_reversed(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["user_paying"])
    started = r.json()
    assert started["state"] == "paying"
    await _quiet(session, started["payment_id"], expired=True)
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.query_payments(job_actor(tasks.QUERY_PAYMENTS)) == 1
    payment = await session.get(Payment, started["payment_id"], populate_existing=True)
    assert payment is not None
    assert payment.status == "closed"
    await session.refresh(order)
    assert order.status == "payment_failed"
    received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
    assert any(
        f"/out-trade-no/{started['out_trade_no']}/reverse" in json.dumps(q)
        for q in received["requests"]
    )


async def test_a_pending_refund_is_asked_about_until_it_settles(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["success"])
    assert r.json()["state"] == "paid"
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"full": True, "reason": "顾客退货"},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert refund.status == "pending"  # the platform settles refunds later
    assert refund.out_refund_no == f"{order.order_no}P01R01"
    await session.refresh(order)
    assert order.status == "refund_requested"

    await asyncio.sleep(0.1)  # the sandbox settles it (its delay divided by the time scale)
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS)) == 1
        assert await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS)) == 0
    await session.refresh(refund)
    assert refund.status == "succeeded"
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refunded", 700)


async def test_the_issue_queue_requery_reaches_the_platform(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    r = await pay(client, creds, order.order_no, mode="qr")
    started = r.json()
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{started['out_trade_no']}/approve")
    # The terminal gave up waiting and reported a failure; the callback never came.
    placed = await session.get(Order, order.id)
    assert placed is not None
    issue = await orders.mark_payment_failed(
        session, placed, actor=job_actor("test"), reason="terminal gave up"
    )
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/issues/{issue.id}/actions",
        json={"action": "requery_payment"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    await session.refresh(issue)
    assert issue.status == "resolved"
    assert (
        await session.scalar(
            select(OrderIssue.id).where(
                OrderIssue.order_id == order.id, OrderIssue.status == "open"
            )
        )
        is None
    )
