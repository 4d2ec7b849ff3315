"""Refunds settled by the platform's refund callback, end to end against the WeChat Pay sandbox
(its REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED notifications, signed and encrypted as
the platform sends them, relayed to our callback endpoint), and a refund the platform refuses
at once: each refusal opens a refund_failed issue carrying the platform's own reason."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Order, OrderIssue, PaymentAccount, PaymentCallback, Refund
from tests.builders import auth_headers, make_user
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Received, Sandbox


def _replayable(call: Received) -> dict[str, str]:
    return {
        k: v
        for k, v in call.headers.items()
        if k.lower().startswith("wechatpay-") or k.lower() == "content-type"
    }


async def _paid_and_refund_asked(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> tuple[Order, Refund, dict[str, str]]:
    _, creds, order = await setup(session, wechat)
    r = await pay(
        client, creds, order.order_no, auth_code=wechat.credentials()["test_auth_codes"]["success"]
    )
    assert r.json()["state"] == "paid", r.text
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"full": True, "reason": "顾客退货"},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    return order, refund, headers


async def _relay_refund_callback(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox, out_refund_no: str
) -> str:
    """Wait for the sandbox's refund callback, deliver it (twice) to our endpoint; the event."""
    account_id = await session.scalar(select(func.max(PaymentAccount.id)))
    for _ in range(500):
        received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
        sent = [c for c in received["callbacks"] if c["out_refund_no"] == out_refund_no]
        if sent and sent[0]["answered"]:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError(f"no refund callback for {out_refund_no}")
    event = sent[0]["event_type"]
    calls = [c for c in wechat.receiver.at("/notify") if c.headers]
    assert calls
    for call in calls:  # the payment's own callback too: a duplicate, harmless
        for _ in range(2):
            r = await client.post(
                f"/api/payments/notify/wechat/{account_id}",
                content=call.body,
                headers=_replayable(call),
            )
            assert r.status_code in (200, 204), r.text
    return str(event)


async def test_refund_success_callback_settles_the_refund(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    order, refund, _ = await _paid_and_refund_asked(client, session, wechat)
    assert refund.status == "pending"
    assert refund.out_refund_no is not None
    event = await _relay_refund_callback(client, session, wechat, refund.out_refund_no)
    assert event == "REFUND.SUCCESS"
    await session.refresh(refund)
    assert refund.status == "succeeded"
    assert refund.channel_refund_id
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refunded", 700)
    outcomes = (
        await session.scalars(
            select(PaymentCallback.outcome)
            .where(PaymentCallback.refund_id == refund.id)
            .order_by(PaymentCallback.id)
        )
    ).all()
    assert list(outcomes) == ["applied", "duplicate"]


@pytest.mark.parametrize(
    ("switch", "event", "reason"),
    [
        ("refund_abnormal", "REFUND.ABNORMAL", "ABNORMAL: 退款异常"),
        ("refund_closed", "REFUND.CLOSED", "CLOSED: 退款关闭"),
    ],
)
async def test_a_refund_ending_abnormal_or_closed_opens_refund_failed_with_the_reason(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    switch: str,
    event: str,
    reason: str,
) -> None:
    r = await asyncio.to_thread(
        wechat.control, "POST", "/next", json={"action": switch, "path_prefix": "/v3/refund"}
    )
    assert r.status_code == 200, r.text
    order, refund, headers = await _paid_and_refund_asked(client, session, wechat)
    assert refund.status == "pending"
    assert refund.out_refund_no is not None
    assert await _relay_refund_callback(client, session, wechat, refund.out_refund_no) == event
    await session.refresh(refund)
    assert (refund.status, refund.failure_reason) == ("failed", reason)
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("paid", 0)  # back where it stood
    issue = await session.scalar(
        select(OrderIssue).where(OrderIssue.order_id == order.id, OrderIssue.status == "open")
    )
    assert issue is not None
    assert issue.kind == "refund_failed"
    assert issue.detail["reason"] == reason
    r = await client.get("/api/v1/orders/issues", params={"kind": "refund_failed"}, headers=headers)
    assert [i["order_id"] for i in r.json()["items"]] == [order.id]


async def test_a_refund_the_platform_refuses_at_once_opens_refund_failed_with_its_words(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    r = await asyncio.to_thread(
        wechat.control, "POST", "/next", json={"action": "decline", "path_prefix": "/v3/refund"}
    )
    assert r.status_code == 200, r.text
    order, refund, _ = await _paid_and_refund_asked(client, session, wechat)
    await session.refresh(refund)
    assert refund.status == "failed"
    assert refund.failure_reason == "基本账户余额不足，请充值后重新发起"
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("paid", 0)
    issue = await session.scalar(
        select(OrderIssue).where(OrderIssue.order_id == order.id, OrderIssue.status == "open")
    )
    assert issue is not None
    assert (issue.kind, issue.detail["reason"]) == ("refund_failed", refund.failure_reason)
