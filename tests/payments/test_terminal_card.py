"""A terminal takes a bank card: the card in the reader is charged through the UnionPay
sandbox (real HTTP, ACP messages) with mode `card`, paid at once, declined with the gateway's
reason, or accepted and waiting (the cardholder at the PIN pad) until the gateway decides; the
card channel takes no code or QR, and WeChat Pay and Alipay take no card mode."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Order, Payment
from selfmart.payments import sandboxes
from tests.builders import make_store
from tests.orders.builders import make_order, make_product
from tests.payments.builders import demo_sandbox_account
from tests.payments.test_terminal_pay import pay, state
from tests.payments.wechatpay.support import Sandbox
from tests.terminals.builders import Credentials, make_active_terminal


async def _card_store(
    session: AsyncSession, wechat: Sandbox
) -> tuple[Credentials, dict[str, str], Order]:
    await demo_sandbox_account(session, wechat, "card")
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    order = await make_order(session, store, [(cola, 2)], terminal=creds.terminal)
    cards = sandboxes.credentials(wechat.settings)["card"]["test_auth_codes"]
    return creds, cards, order


async def test_a_card_in_the_reader_pays_the_order(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    creds, cards, order = await _card_store(session, wechat)
    r = await pay(
        client, creds, order.order_no, channel="card", mode="card", auth_code=cards["success"]
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["state"], body["order_status"], body["amount_fen"]) == ("paid", "paid", 700)
    assert body["transaction_id"]
    payment = await session.get(Payment, body["payment_id"])
    assert payment is not None
    assert (payment.channel, payment.mode, payment.status) == ("card", "card", "succeeded")
    # the card number is never kept whole
    assert cards["success"] not in str(payment.raw_request)
    assert cards["success"] not in str(payment.raw_response)
    await session.refresh(order)
    assert (order.status, order.paid_fen, order.payment_method) == ("paid", 700, "card")

    # the same attempt again: the same payment, nothing charged again
    again = await pay(
        client, creds, order.order_no, channel="card", mode="card", auth_code=cards["success"]
    )
    assert again.status_code == 200, again.text
    assert (again.json()["payment_id"], again.json()["outcome"]) == (payment.id, "duplicate")


async def test_a_declined_card_says_why_then_another_card_pays(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    creds, cards, order = await _card_store(session, wechat)
    r = await pay(
        client, creds, order.order_no, channel="card", mode="card", auth_code=cards["declined"]
    )
    assert r.status_code == 201, r.text
    assert (r.json()["state"], r.json()["order_status"]) == ("failed", "payment_failed")
    assert r.json()["failure_code"]
    assert r.json()["failure_reason"]
    r = await pay(
        client, creds, order.order_no, attempt_id="A2", channel="card", mode="card",
        auth_code=cards["success"],
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "paid"


async def test_a_card_waiting_for_the_cardholder_blocks_another_then_is_paid(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    creds, cards, order = await _card_store(session, wechat)
    r = await pay(
        client, creds, order.order_no, channel="card", mode="card",
        auth_code=cards["user_paying"],
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "paying"
    out_trade_no = r.json()["out_trade_no"]
    # the cardholder is still at the PIN pad: no second attempt meanwhile
    second = await pay(client, creds, order.order_no, attempt_id="A2", channel="wechat", mode="qr")
    assert second.status_code == 409, second.text
    assert second.json()["error"] == "payment_in_progress"
    # the gateway approves; the terminal's state read finds it paid
    async with httpx.AsyncClient(timeout=60) as http:
        ok = await http.post(
            f"{wechat.url}/sandbox/unionpay/_control/transactions/{out_trade_no}/approve"
        )
    assert ok.status_code in (200, 204), ok.text
    s = await state(client, creds, order.order_no, wait=5)
    assert s.status_code == 200, s.text
    assert s.json()["attempt"]["state"] == "paid", s.text
    assert s.json()["order_status"] == "paid"


async def test_cards_are_taken_by_the_reader_only(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    creds, cards, order = await _card_store(session, wechat)
    for body, field in (
        ({"channel": "card", "mode": "code", "auth_code": cards["success"]}, "body.mode"),
        ({"channel": "card", "mode": "qr"}, "body.mode"),
        ({"channel": "wechat", "mode": "card", "auth_code": cards["success"]}, "body.mode"),
        ({"channel": "card", "mode": "card"}, "auth_code"),
    ):
        r = await pay(client, creds, order.order_no, **body)
        assert r.status_code == 422, (body, r.text)
        assert field in {d["field"] for d in r.json()["details"]}, (body, r.text)
    assert not (await session.scalars(select(Payment).where(Payment.order_id == order.id))).all()
    await session.refresh(order)
    assert order.status == "awaiting_payment"
