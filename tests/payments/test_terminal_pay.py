"""A terminal pays an order through our WeChat Pay sandbox (real HTTP, the platform's own
protocol): payment code paid at once, USERPAYING then paid, declined with the platform's
reason, a QR to show; the attempt is a row with its raw exchange; retries of an attempt id
charge nothing twice; a store without the channel cannot offer it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import AuditLog, Order, OrderIssue, Payment, Store
from tests.builders import make_store
from tests.orders.builders import make_order, make_product
from tests.payments.builders import sandbox_account
from tests.payments.wechatpay.support import Sandbox
from tests.terminals.builders import Credentials, make_active_terminal


def _pay_url(order_no: str) -> str:
    return f"/api/terminal/v1/orders/{order_no}/payments"


async def pay(
    client: httpx.AsyncClient, creds: Credentials, order_no: str, **body: Any
) -> httpx.Response:
    payload = {"attempt_id": "A1", "channel": "wechat", "mode": "code", **body}
    raw, headers = creds.signed_json("POST", _pay_url(order_no), payload)
    return await client.post(_pay_url(order_no), content=raw, headers=headers)


async def state(
    client: httpx.AsyncClient, creds: Credentials, order_no: str, wait: int = 0
) -> httpx.Response:
    target = f"/api/terminal/v1/orders/{order_no}/payment?wait={wait}"
    headers = creds.sign("GET", target, b"")
    return await client.get(target, headers=headers)


async def setup(
    session: AsyncSession, wechat: Sandbox, **account: Any
) -> tuple[Store, Credentials, Order]:
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    order = await make_order(session, store, [(cola, 2)], terminal=creds.terminal)
    await sandbox_account(
        session,
        None,
        wechat.credentials(),
        notify_url=f"{wechat.receiver.url}/notify",
        **account,
    )
    return store, creds, order


async def test_a_payment_code_pays_the_order(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["success"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "paid"
    assert body["order_status"] == "paid"
    assert body["amount_fen"] == 700
    assert body["transaction_id"]
    assert body["outcome"] == "started"

    await session.refresh(order)
    assert (order.status, order.paid_fen, order.payment_method) == ("paid", 700, "wechat")
    payment = await session.get(Payment, body["payment_id"])
    assert payment is not None
    assert payment.mode == "code"
    assert payment.out_trade_no == f"{order.order_no}P01"
    assert payment.attempt_id == "A1"
    assert payment.raw_request["url"].endswith("/v3/pay/transactions/codepay")
    assert payment.raw_response
    assert wechat.credentials()["merchant_private_key"] not in str(payment.raw_request)

    # The same attempt again: the same payment, nothing charged again.
    again = await pay(client, creds, order.order_no, auth_code=codes["success"])
    assert again.status_code == 200, again.text
    assert again.json()["payment_id"] == body["payment_id"]
    assert again.json()["outcome"] == "duplicate"
    received = wechat.control("GET", "/received").json()["requests"]
    assert sum(1 for q in received if "codepay" in str(q)) == 1

    # A new attempt on a paid order is refused, naming both states.
    r = await pay(client, creds, order.order_no, attempt_id="A2", auth_code=codes["success"])
    assert r.status_code == 409
    audit = (
        await session.scalars(
            select(AuditLog.action).where(
                AuditLog.entity_type == "order", AuditLog.entity_id == str(order.id)
            )
        )
    ).all()
    assert "order.payment_start" in audit
    assert "order.pay" in audit


async def test_user_paying_then_paid_through_the_long_poll(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["user_paying"])
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "paying"
    out_trade_no = r.json()["out_trade_no"]

    r = await state(client, creds, order.order_no)
    assert r.json()["attempt"]["state"] == "paying"
    assert r.json()["owed_fen"] == 700

    async def customer_enters_password() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(wechat.control, "POST", f"/payments/{out_trade_no}/approve")

    approving = asyncio.create_task(customer_enters_password())
    r = await state(client, creds, order.order_no, wait=10)
    await approving
    assert r.status_code == 200, r.text
    assert r.json()["attempt"]["state"] == "paid"
    assert r.json()["order_status"] == "paid"
    assert r.json()["owed_fen"] == 0


async def test_a_declined_code_says_why_and_the_order_can_be_paid_again(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    codes = wechat.credentials()["test_auth_codes"]
    r = await pay(client, creds, order.order_no, auth_code=codes["insufficient_funds"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "failed"
    assert body["failure_code"]
    assert body["failure_reason"]
    assert body["order_status"] == "payment_failed"
    issue = await session.scalar(select(OrderIssue).where(OrderIssue.order_id == order.id))
    assert issue is not None
    assert issue.kind == "payment_failed"

    r = await pay(client, creds, order.order_no, attempt_id="A2", auth_code=codes["success"])
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "paid"
    assert r.json()["out_trade_no"] == f"{order.order_no}P02"
    await session.refresh(order)
    assert order.status == "paid"
    await session.refresh(issue)
    assert issue.status == "resolved"


async def test_a_qr_to_show(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, creds, order = await setup(session, wechat)
    r = await pay(client, creds, order.order_no, mode="qr")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "waiting"
    assert body["pay_url"].startswith("weixin://")
    r = await state(client, creds, order.order_no, wait=1)
    assert r.json()["attempt"]["state"] == "waiting"


async def test_a_store_without_the_channel_cannot_offer_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    creds = await make_active_terminal(session, store)
    order = await make_order(session, store, [(cola, 1)], terminal=creds.terminal)
    r = await pay(client, creds, order.order_no, auth_code="130000000000000001")
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "channel_not_offered"
    assert r.json()["details"][0]["field"] == "channel"
    assert await session.scalar(select(Payment.id).where(Payment.order_id == order.id)) is None
