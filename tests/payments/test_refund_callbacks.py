"""Refunds settled by the platform's refund notification, end to end against the sandboxes
(WeChat REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED, Alipay's trade notification naming
the refunded total, UnionPay's backUrl notify of a refund, each signed as the platform signs
it and relayed to our callback endpoint), and refunds each platform refuses at once: every
refusal opens a refund_failed issue carrying the platform's own reason."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import job_actor
from selfmart.kit.time import utcnow
from selfmart.models import (
    Order,
    OrderIssue,
    OrderLine,
    Payment,
    PaymentAccount,
    PaymentCallback,
    Refund,
)
from selfmart.orders import service as orders
from selfmart.payments import accounts, sandboxes
from selfmart.payments.alipay import account as alipay_account
from selfmart.payments.platform import PayRequest
from selfmart.payments.unionpay import account as unionpay_account
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product
from tests.payments.builders import demo_sandbox_account
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Received, Sandbox
from tests.terminals.builders import make_active_terminal


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


# -- Alipay: refunds answer at once; the notification names the trade's refunded total --------


async def _alipay_paid(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> tuple[Order, PaymentAccount, dict[str, str]]:
    """An order of two units paid by Alipay payment code through the sandbox (the server that
    serves the WeChat sandbox serves Alipay's too); its notifications reach the receiver."""
    account = await demo_sandbox_account(session, wechat, "alipay")
    account.notify_url = f"{wechat.receiver.url}/alipay"
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    order = await make_order(session, store, [(cola, 2)], terminal=creds.terminal)
    code = sandboxes.credentials(wechat.settings)["alipay"]["test_auth_codes"]["success"]
    r = await pay(client, creds, order.order_no, channel="alipay", auth_code=code)
    assert r.json()["state"] == "paid", r.text
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    return order, account, headers


async def _refund_one_unit(
    client: httpx.AsyncClient, session: AsyncSession, order: Order, headers: dict[str, str]
) -> Refund:
    line_id = await session.scalar(select(OrderLine.id).where(OrderLine.order_id == order.id))
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"lines": [{"line_id": line_id, "quantity": 1}], "reason": "顾客退货"},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    refund = await session.scalar(
        select(Refund)
        .where(Refund.order_id == order.id)
        .order_by(Refund.id.desc())
        .execution_options(populate_existing=True)
    )
    assert refund is not None
    return refund


async def _alipay_control(wechat: Sandbox, **body: object) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{wechat.url}/sandbox/alipay/_control/next", json=body)
    assert r.status_code in (200, 204), r.text


async def test_an_alipay_refund_left_unknown_is_settled_by_its_notification(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second of two refunds times out on our side (the gateway makes it anyway): its
    notification says refund_fee 7.00, everything refunded so far, and settles it (this was
    taken for an amount mismatch when only the refund's own 3.50 was accepted)."""
    order, account, headers = await _alipay_paid(client, session, wechat)
    first = await _refund_one_unit(client, session, order, headers)
    assert first.status == "succeeded"  # Alipay answers a refund at once

    monkeypatch.setattr(alipay_account, "TIMEOUT_SECONDS", 0.3)
    await _alipay_control(wechat, action="timeout", method="alipay.trade.refund", seconds=1.0)
    second = await _refund_one_unit(client, session, order, headers)
    assert second.status == "pending"  # the outcome is unknown: our client gave up
    assert second.out_refund_no is not None
    for _ in range(500):
        sent = [c for c in wechat.receiver.at("/alipay") if second.out_refund_no.encode() in c.body]
        if sent:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("no refund notification reached the receiver")
    assert b"refund_fee=7.00" in sent[0].body
    r = await client.post(
        f"/api/payments/notify/alipay/{account.id}",
        content=sent[0].body,
        headers={"content-type": sent[0].headers.get("content-type", "")},
    )
    assert (r.status_code, r.text) == (200, "success")
    record = await session.scalar(
        select(PaymentCallback)
        .where(PaymentCallback.refund_id == second.id)
        .order_by(PaymentCallback.id.desc())
    )
    assert record is not None
    assert (record.outcome, record.reason) == ("applied", None)
    await session.refresh(second)
    assert second.status == "succeeded"
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refunded", 700)


async def test_an_alipay_refund_refused_opens_refund_failed_with_its_words(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    order, _, headers = await _alipay_paid(client, session, wechat)
    await _alipay_control(
        wechat,
        action="decline",
        method="alipay.trade.refund",
        sub_code="ACQ.SELLER_BALANCE_NOT_ENOUGH",
    )
    refund = await _refund_one_unit(client, session, order, headers)
    assert refund.status == "failed"
    assert refund.failure_reason is not None
    assert "ACQ.SELLER_BALANCE_NOT_ENOUGH" in (refund.failure_code or "")
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("paid", 0)
    issue = await session.scalar(
        select(OrderIssue).where(OrderIssue.order_id == order.id, OrderIssue.status == "open")
    )
    assert issue is not None
    assert (issue.kind, issue.detail["reason"]) == ("refund_failed", refund.failure_reason)


# -- UnionPay: a card payment refunded through the core, settled by the backUrl notify --------


async def _card_paid(
    session: AsyncSession, wechat: Sandbox
) -> tuple[Order, PaymentAccount, dict[str, str]]:
    """A card payment made at the UnionPay sandbox through our account class and applied as
    the core applies an attempt's answer (the terminal's card route: test_terminal_card)."""
    account = await demo_sandbox_account(session, wechat, "card")
    account.notify_url = f"{wechat.receiver.url}/card"
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    order = await make_order(session, store, [(cola, 2)])
    out_trade_no = f"{order.order_no}P01"
    started = utcnow()
    card = sandboxes.credentials(wechat.settings)["card"]["test_auth_codes"]["success"]
    answer = await accounts.open_platform(account).pay(
        PayRequest(
            out_trade_no=out_trade_no,
            amount_fen=700,
            description="可乐",
            mode="card",
            auth_code=card,
            started_at=started,
        )
    )
    assert answer.status == "succeeded", answer
    payment = Payment(
        order_id=order.id, store_id=store.id, channel="card", status="succeeded",
        amount_fen=700, channel_txn_id=answer.channel_txn_id, created_at=started,
        succeeded_at=answer.paid_at or utcnow(), actor_type="terminal", account_id=account.id,
        mode="card", out_trade_no=out_trade_no,
    )  # fmt: skip
    session.add(payment)
    await session.flush()
    await orders.apply_payment(session, order, payment, actor=job_actor("test"), reason="pay")
    await session.refresh(order)
    assert order.status == "paid"
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    return order, account, headers


async def _unionpay_control(wechat: Sandbox, **body: object) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{wechat.url}/sandbox/unionpay/_control/next", json=body)
    assert r.status_code in (200, 204), r.text


async def test_a_unionpay_refund_left_unknown_is_settled_by_its_backurl_notification(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order, account, headers = await _card_paid(session, wechat)
    monkeypatch.setattr(unionpay_account, "TIMEOUT_SECONDS", 0.3)
    await _unionpay_control(wechat, action="timeout", txn_type="04", seconds=1.0)
    refund = await _refund_one_unit(client, session, order, headers)
    assert refund.status == "pending"  # our client gave up; the gateway refunds anyway
    assert refund.out_refund_no is not None
    needle = f"orderId={refund.out_refund_no}".encode()
    for _ in range(500):
        sent = [c for c in wechat.receiver.at("/card") if needle in c.body]
        if sent:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("no refund notification reached the receiver")
    for _ in range(2):
        r = await client.post(
            f"/api/payments/notify/card/{account.id}",
            content=sent[0].body,
            headers={"content-type": sent[0].headers.get("content-type", "")},
        )
        assert r.status_code == 200, r.text
    outcomes = (
        await session.scalars(
            select(PaymentCallback.outcome)
            .where(PaymentCallback.refund_id == refund.id)
            .order_by(PaymentCallback.id)
        )
    ).all()
    assert list(outcomes) == ["applied", "duplicate"]
    await session.refresh(refund)
    assert (refund.status, refund.amount_fen) == ("succeeded", 350)
    assert refund.channel_refund_id
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("partially_refunded", 350)


async def test_a_unionpay_refund_refused_opens_refund_failed_with_its_words(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    order, _, headers = await _card_paid(session, wechat)
    await _unionpay_control(wechat, action="decline", txn_type="04", resp_code="61")
    refund = await _refund_one_unit(client, session, order, headers)
    assert (refund.status, refund.failure_code) == ("failed", "61")
    assert refund.failure_reason
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("paid", 0)
    issue = await session.scalar(
        select(OrderIssue).where(OrderIssue.order_id == order.id, OrderIssue.status == "open")
    )
    assert issue is not None
    assert (issue.kind, issue.detail["reason"]) == ("refund_failed", refund.failure_reason)
