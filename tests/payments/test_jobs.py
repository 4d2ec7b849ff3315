"""The payments jobs against the WeChat Pay, Alipay and UnionPay sandboxes (no callback reaches
the app unless a test hands it over): a quiet pending payment is asked about (paid without its
callback); a payment waiting for the customer's password or PIN (WeChat USERPAYING, Alipay
10003 WAIT_BUYER_PAY, UnionPay 05) is asked about until it is paid, and past its deadline is
reversed or cancelled on the platform, except a card consume the gateway has not decided,
which cannot be undone and is asked about until it is; a pending refund, and one whose answer
was lost, is asked about (or sent again) until it settles; the abnormal-order queue's re-query
reaches the platform."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.iam.actor import job_actor
from selfmart.jobs import runtime
from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderIssue, Payment, Refund
from selfmart.orders import service as orders
from selfmart.payments import tasks
from tests.builders import auth_headers, make_user
from tests.payments.platforms import (
    CHANNELS,
    PAY_CALL,
    QR_CHANNELS,
    REFUND_CALL,
    calls,
    channel_setup,
    control,
    decide,
    next_call,
    present,
    taken_fen,
)
from tests.payments.test_faults import impatient
from tests.payments.test_terminal_pay import pay, setup
from tests.payments.wechatpay.support import Sandbox
from tests.support import settings_for

__all__ = ["impatient"]  # the fixture whose platform calls give up after one second


async def _quiet(session: AsyncSession, payment_id: int, *, expired: bool = False) -> None:
    past = utcnow() - timedelta(minutes=5)
    values: dict[str, object] = {"updated_at": past}
    if expired:
        values["expires_at"] = past
    await session.execute(update(Payment).where(Payment.id == payment_id).values(**values))


def _waiting_body(wechat: Sandbox, channel: str) -> dict[str, object]:
    """A payment that waits for the customer: a QR shown, or (UnionPay has no QR) a card
    whose holder is still at the PIN pad."""
    if channel in QR_CHANNELS:
        return {"channel": channel, "mode": "qr"}
    return present(wechat, channel, "user_paying")


async def _job(db_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with runtime.running(settings_for(db_url), sessionmaker):
        return await tasks.query_payments(job_actor(tasks.QUERY_PAYMENTS))


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_paid_payment_with_no_callback_is_found_by_the_job(
    channel: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, **_waiting_body(wechat, channel))
    started = r.json()
    assert started["state"] in ("waiting", "paying"), started
    await decide(wechat, channel, started["out_trade_no"])
    await _quiet(session, started["payment_id"])
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.query_payments(job_actor(tasks.QUERY_PAYMENTS)) == 1
        assert await tasks.query_payments(job_actor(tasks.QUERY_PAYMENTS)) == 0
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    assert await taken_fen(wechat, channel, [started["out_trade_no"]]) == 700


@pytest.mark.parametrize("channel", CHANNELS)
async def test_user_paying_is_asked_about_until_it_is_paid(
    channel: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """WeChat USERPAYING, Alipay 10003 WAIT_BUYER_PAY, UnionPay 05 (accepted, the cardholder
    at the PIN pad): the terminal is told `paying`; the job asks until the customer is done."""
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, **present(wechat, channel, "user_paying"))
    started = r.json()
    assert started["state"] == "paying", started
    await _quiet(session, started["payment_id"])
    assert await _job(db_url, sessionmaker) == 1
    payment = await session.get(Payment, started["payment_id"], populate_existing=True)
    assert payment is not None
    assert payment.status == "pending"  # still entering the password
    await decide(wechat, channel, started["out_trade_no"])
    await _quiet(session, started["payment_id"])
    assert await _job(db_url, sessionmaker) == 1
    await session.refresh(payment)
    assert (payment.status, payment.amount_fen) == ("succeeded", 700)
    assert payment.channel_txn_id
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)


#: the call that undoes a payment-code payment on each platform
UNDO = {"wechat": "/reverse", "alipay": "alipay.trade.cancel", "card": "31"}


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
async def test_user_paying_past_its_deadline_is_reversed(
    channel: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """WeChat reverse, Alipay cancel: the platform is told, so the customer cannot finish
    paying an attempt we gave up on."""
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, **present(wechat, channel, "user_paying"))
    started = r.json()
    assert started["state"] == "paying"
    await _quiet(session, started["payment_id"], expired=True)
    assert await _job(db_url, sessionmaker) == 1
    payment = await session.get(Payment, started["payment_id"], populate_existing=True)
    assert payment is not None
    assert payment.status == "closed"
    await session.refresh(order)
    assert order.status == "payment_failed"
    if channel == "wechat":
        received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
        assert any(
            f"/out-trade-no/{started['out_trade_no']}/reverse" in json.dumps(q)
            for q in received["requests"]
        )
    else:
        assert await calls(wechat, channel, UNDO[channel]) == 1
    # The customer finishing now is refused by the platform: nothing can be taken.
    r = await asyncio.to_thread(
        control,
        wechat,
        channel,
        "POST",
        f"/{'payments' if channel == 'wechat' else 'trades'}/{started['out_trade_no']}/approve",
    )
    assert r.status_code >= 400, r.text
    assert await taken_fen(wechat, channel, [started["out_trade_no"]]) == 0


async def test_a_refused_reverse_leaves_the_payment_pending_until_the_platform_decides(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """WeChat refuses the reverse (403 TRADE_ERROR) while the customer is still entering the
    password: the attempt is not taken as closed (the money may yet be taken); the next run
    asks again, and the customer's payment, finished meanwhile, pays the order."""
    _, creds, order = await channel_setup(session, wechat, "wechat")
    r = await pay(client, creds, order.order_no, **present(wechat, "wechat", "user_paying"))
    started = r.json()
    assert started["state"] == "paying"
    out_no = started["out_trade_no"]
    await next_call(
        wechat, "wechat", "decline", f"/v3/pay/transactions/out-trade-no/{out_no}/reverse"
    )
    await _quiet(session, started["payment_id"], expired=True)
    assert await _job(db_url, sessionmaker) == 1
    payment = await session.get(Payment, started["payment_id"], populate_existing=True)
    assert payment is not None
    assert (payment.status, payment.failure_code) == ("pending", "TRADE_ERROR")
    await session.refresh(order)
    assert order.status == "awaiting_payment"
    # The customer finishes paying; the next run finds it paid, not reversed.
    await decide(wechat, "wechat", out_no)
    await _quiet(session, started["payment_id"], expired=True)
    assert await _job(db_url, sessionmaker) == 1
    await session.refresh(payment)
    assert (payment.status, payment.amount_fen) == ("succeeded", 700)
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
    assert await taken_fen(wechat, "wechat", [out_no]) == 700


@pytest.mark.parametrize("channel", QR_CHANNELS)
async def test_an_unpaid_qr_past_its_deadline_is_closed_on_the_platform(
    channel: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """WeChat close, Alipay close: a QR nobody paid in time can no longer be paid."""
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, channel=channel, mode="qr")
    started = r.json()
    assert started["state"] == "waiting"
    await _quiet(session, started["payment_id"], expired=True)
    assert await _job(db_url, sessionmaker) == 1
    payment = await session.get(Payment, started["payment_id"], populate_existing=True)
    assert payment is not None
    assert payment.status == "closed"
    close = f"/out-trade-no/{started['out_trade_no']}/close"
    if channel == "wechat":
        assert await calls(wechat, channel, f"/v3/pay/transactions{close}") == 1
    else:
        assert await calls(wechat, channel, "alipay.trade.close") == 1
    what = "payments" if channel == "wechat" else "trades"
    r = await asyncio.to_thread(
        control, wechat, channel, "POST", f"/{what}/{started['out_trade_no']}/approve"
    )
    assert r.status_code >= 400, r.text
    assert await taken_fen(wechat, channel, [started["out_trade_no"]]) == 0


async def test_a_card_the_gateway_has_not_decided_is_not_given_up_past_its_deadline(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """UnionPay's 05: a consume the gateway accepted and has not decided cannot be undone (an
    undo needs a consume that succeeded), so past its deadline it is not closed on our side
    while the gateway may still take the money: it stays `paying` and is asked about until the
    gateway decides; declined, the order can be paid again."""
    _, creds, order = await channel_setup(session, wechat, "card")
    r = await pay(client, creds, order.order_no, **present(wechat, "card", "user_paying"))
    started = r.json()
    assert started["state"] == "paying"
    await _quiet(session, started["payment_id"], expired=True)
    assert await _job(db_url, sessionmaker) == 1
    payment = await session.get(Payment, started["payment_id"], populate_existing=True)
    assert payment is not None
    assert payment.status == "pending"
    await session.refresh(order)
    assert order.status == "awaiting_payment"
    assert await calls(wechat, "card", UNDO["card"]) == 0
    # Nor can another attempt start meanwhile: the cardholder may still confirm this one.
    r = await pay(
        client, creds, order.order_no, attempt_id="A2", **present(wechat, "card", "success")
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "payment_in_progress"

    await decide(wechat, "card", started["out_trade_no"], paid=False)
    await _quiet(session, started["payment_id"], expired=True)
    assert await _job(db_url, sessionmaker) == 1
    await session.refresh(payment)
    assert payment.status == "failed"
    await session.refresh(order)
    assert order.status == "payment_failed"
    r = await pay(
        client, creds, order.order_no, attempt_id="A2", **present(wechat, "card", "success")
    )
    assert r.json()["state"] == "paid", r.text
    assert (
        await taken_fen(wechat, "card", [started["out_trade_no"], r.json()["out_trade_no"]]) == 700
    )


# WeChat Pay only: its refunds answer PROCESSING and settle later. Alipay answers a refund at
# once (fund_change Y), and UnionPay's 04 is asked about by our account as soon as the gateway
# accepts it (our sandbox has it settled by then), so on those a refund is left pending only
# when its answer is lost or is a system error: the two tests after this one, on all three.
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


async def _refunded_at_platform(wechat: Sandbox, channel: str, out_trade_no: str) -> int:
    """What the platform has given back on one payment."""
    if channel == "wechat":
        # The sandbox makes one refund per out_refund_no, however often it is sent.
        received = (await asyncio.to_thread(wechat.control, "GET", "/received")).json()
        sent = [
            json.loads(q["body"])
            for q in received["requests"]
            if q["method"] == "POST" and q["url"] == "/v3/refund/domestic/refunds"
        ]
        by_number = {x["out_refund_no"]: x["amount"]["refund"] for x in sent}  # one payment
        return sum(by_number.values())
    if channel == "alipay":
        trades = (await asyncio.to_thread(control, wechat, channel, "GET", "/trades")).json()
        [trade] = [t for t in trades if t["out_trade_no"] == out_trade_no]
        whole, _, cents = str(trade["refunded_amount"]).partition(".")
        return int(whole) * 100 + int(cents or 0)
    txns = (await asyncio.to_thread(control, wechat, channel, "GET", "/transactions")).json()
    [paid] = [t for t in txns if t["orderId"] == out_trade_no and t["txnType"] == "01"]
    return int(paid["returned"])


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_refund_whose_answer_was_lost_is_settled_by_the_job(
    channel: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
    impatient: None,
) -> None:
    """The refund request times out (the platform takes three seconds, we wait one): the
    refund stays pending, and the job sends it again under the same number (Alipay
    `out_request_no`, UnionPay `orderId` and `txnTime`, WeChat `out_refund_no`), which the
    platform takes as the same refund, or asks about it, until it settles: the money goes back
    once."""
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, **present(wechat, channel, "success"))
    paid = r.json()
    assert paid["state"] == "paid", r.text
    await next_call(wechat, channel, "timeout", REFUND_CALL[channel], seconds=3)
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"full": True, "reason": "顾客退货"},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert refund.status == "pending"
    assert refund.failure_code == "timeout"

    # The platform finishes the refund it was sent; then the job settles ours.
    for _ in range(200):
        if await _refunded_at_platform(wechat, channel, paid["out_trade_no"]) == 700:
            break
        await asyncio.sleep(0.05)
    if channel == "wechat":
        await asyncio.sleep(0.1)  # the sandbox settles its refunds a moment later
    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS)) == 1
        assert await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS)) == 0
    await session.refresh(refund)
    assert refund.status == "succeeded"
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refunded", 700)
    assert await _refunded_at_platform(wechat, channel, paid["out_trade_no"]) == 700


@pytest.mark.parametrize("channel", ["wechat", "alipay", "card"])
async def test_a_refund_the_platform_never_took_is_sent_again_not_failed(
    channel: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    wechat: Sandbox,
) -> None:
    """The platform answered the refund request with a system error (WeChat 500 SYSTEM_ERROR,
    Alipay 20000 ACQ.SYSTEM_ERROR, UnionPay HTTP 500) and took nothing: asked about it, it
    says there is no such refund. That is no refusal: the job sends it again under the same
    number (as Alipay says to), and it settles; no refund_failed issue for a person."""
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, **present(wechat, channel, "success"))
    paid = r.json()
    assert paid["state"] == "paid", r.text
    action = "system_error" if channel == "alipay" else "error"
    await next_call(wechat, channel, action, REFUND_CALL[channel])
    headers = await auth_headers(session, await make_user(session, role="super_admin"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"full": True, "reason": "顾客退货"},
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund is not None
    assert refund.status == "pending"
    assert await _refunded_at_platform(wechat, channel, paid["out_trade_no"]) == (
        700 if channel == "wechat" else 0  # (WeChat's listing is of what was sent)
    )
    if channel == "wechat":
        await asyncio.sleep(0.1)  # the sandbox settles its refunds a moment later
    async with runtime.running(settings_for(db_url), sessionmaker):
        await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS))
        if channel == "wechat":
            await asyncio.sleep(0.1)
        await tasks.query_refunds(job_actor(tasks.QUERY_REFUNDS))
    await session.refresh(refund)
    assert refund.status == "succeeded", (refund.failure_code, refund.failure_reason)
    await session.refresh(order)
    assert (order.status, order.refunded_fen) == ("refunded", 700)
    assert await _refunded_at_platform(wechat, channel, paid["out_trade_no"]) == 700
    assert (
        await session.scalar(
            select(OrderIssue.id).where(
                OrderIssue.order_id == order.id, OrderIssue.kind == "refund_failed"
            )
        )
        is None
    )


@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_issue_queue_requery_reaches_the_platform(
    channel: str, client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await channel_setup(session, wechat, channel)
    r = await pay(client, creds, order.order_no, **_waiting_body(wechat, channel))
    started = r.json()
    await decide(wechat, channel, started["out_trade_no"])
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


async def test_the_issue_queue_requery_of_a_timed_out_request_does_not_fail_it(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox, impatient: None
) -> None:
    """The payment's request timed out (we wait one second, the platform takes eight), and a
    person re-queries the order's issue meanwhile: "no such payment" is no failure before the
    attempt's deadline, as the job and the terminal's poll rule, since the request may still be
    taken and charged. Once the platform has taken it, the re-query finds it paid."""
    # A card consume: the UnionPay sandbox takes it only once its slow answer is due (WeChat's
    # takes it at once and answers late), so asking finds nothing meanwhile, and the gateway
    # says so as a failure (Alipay's account already reads its TRADE_NOT_EXIST as pending).
    _, creds, order = await channel_setup(session, wechat, "card")
    await next_call(wechat, "card", "timeout", PAY_CALL["card"], seconds=8)
    r = await pay(client, creds, order.order_no, **present(wechat, "card", "success"))
    body = r.json()
    assert (body["state"], body["failure_code"]) == ("paying", "timeout"), body
    placed = await session.get(Order, order.id)
    assert placed is not None
    issue = await orders.mark_payment_failed(
        session, placed, actor=job_actor("test"), reason="terminal gave up"
    )
    headers = await auth_headers(session, await make_user(session, role="super_admin"))

    async def requery() -> None:
        r = await client.post(
            f"/api/v1/orders/issues/{issue.id}/actions",
            json={"action": "requery_payment"},
            headers=headers,
        )
        assert r.status_code == 200, r.text

    await requery()
    payment = await session.get(Payment, body["payment_id"], populate_existing=True)
    assert payment is not None
    assert payment.status == "pending"
    await session.refresh(issue)
    assert issue.detail["last_query"] == "pending"
    # The platform takes the request late and charges the customer; asked again, it is paid.
    for _ in range(300):
        if await taken_fen(wechat, "card", [body["out_trade_no"]]) == 700:
            break
        await asyncio.sleep(0.1)
    await requery()
    await session.refresh(payment)
    assert (payment.status, payment.amount_fen) == ("succeeded", 700)
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
