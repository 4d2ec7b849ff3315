"""The customer's phone page pays an unpaid order through the receipt's signed link (WeChat Pay
H5 and Alipay wap against the sandboxes): what is owed and the channels offered, the
platform's page to open, the order paid when the customer comes back; a forged link and an
unoffered channel refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import Payment
from selfmart.orders import receipts
from tests.builders import make_store
from tests.orders.builders import make_order, make_product
from tests.payments.builders import demo_sandbox_account
from tests.payments.test_terminal_pay import setup
from tests.payments.wechatpay.support import Sandbox


async def test_the_phone_page_pays_what_is_owed(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, _, order = await setup(session, wechat)
    token = receipts.make_token(order.id)
    base = f"/api/v1/public/orders/receipt/{token}"

    r = await client.get(f"{base}/payment")
    assert r.status_code == 200, r.text
    assert (r.json()["owed_fen"], r.json()["channels"], r.json()["attempt"]) == (
        700,
        ["wechat"],
        None,
    )

    r = await client.post(
        f"{base}/payments", json={"attempt_id": "phone-0001", "channel": "alipay"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "channel_not_offered"

    r = await client.post(
        f"{base}/payments", json={"attempt_id": "phone-0001", "channel": "wechat"}
    )
    assert r.status_code == 201, r.text
    started = r.json()
    assert (started["mode"], started["state"]) == ("h5", "waiting")
    assert started["pay_url"].startswith("http")
    again = await client.post(
        f"{base}/payments", json={"attempt_id": "phone-0001", "channel": "wechat"}
    )
    assert again.status_code == 200
    assert again.json()["payment_id"] == started["payment_id"]

    # The customer pays on the platform's page and comes back to the receipt page.
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{started['out_trade_no']}/approve")
    await session.execute(
        update(Payment)
        .where(Payment.id == started["payment_id"])
        .values(updated_at=utcnow() - timedelta(minutes=1))
    )
    r = await client.get(f"{base}/payment")
    assert r.status_code == 200, r.text
    assert r.json()["attempt"]["state"] == "paid"
    assert (r.json()["order_status"], r.json()["owed_fen"], r.json()["channels"]) == ("paid", 0, [])
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)


async def test_a_forged_link_pays_nothing(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/public/orders/receipt/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/payments",
        json={"attempt_id": "phone-0001", "channel": "wechat"},
    )
    assert r.status_code == 404


async def test_the_phone_page_pays_by_alipay_wap(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """Alipay's phone payment is a signed gateway URL the customer's browser opens (the trade
    exists only once it is opened): the cashier page, the customer pays, the phone page finds
    the order paid by asking Alipay."""
    await demo_sandbox_account(session, wechat, "alipay")
    store = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350)
    order = await make_order(session, store, [(cola, 2)])
    token = receipts.make_token(order.id)
    base = f"/api/v1/public/orders/receipt/{token}"

    r = await client.get(f"{base}/payment")
    assert r.status_code == 200, r.text
    assert "alipay" in r.json()["channels"]
    r = await client.post(
        f"{base}/payments", json={"attempt_id": "phone-alipay-1", "channel": "alipay"}
    )
    assert r.status_code == 201, r.text
    started = r.json()
    assert (started["channel"], started["mode"], started["state"]) == ("alipay", "h5", "waiting")
    assert started["pay_url"].startswith(f"{wechat.url}/sandbox/alipay/gateway.do?")
    assert "method=alipay.trade.wap.pay" in started["pay_url"]
    assert f"/r/{token}" in started["pay_url"].replace("%2F", "/")  # back to the receipt

    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(started["pay_url"])
        assert page.status_code == 200, page.text
        assert started["out_trade_no"] in page.text
        paid = await browser.post(
            f"{wechat.url}/sandbox/alipay/_control/trades/{started['out_trade_no']}/approve"
        )
        assert paid.status_code < 400, paid.text

    await session.execute(
        update(Payment)
        .where(Payment.id == started["payment_id"])
        .values(updated_at=utcnow() - timedelta(minutes=1))
    )
    r = await client.get(f"{base}/payment")
    assert r.json()["attempt"]["state"] == "paid", r.text
    assert (r.json()["order_status"], r.json()["owed_fen"]) == ("paid", 0)
    await session.refresh(order)
    assert (order.status, order.paid_fen, order.payment_method) == ("paid", 700, "alipay")


async def test_the_look_up_by_number_and_phone_digits_can_pay(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """/my-order: a customer who names the order number and their phone's last four digits
    gets the receipt's signed token back and pays with it as the receipt's link does; a wrong
    guess gets nothing."""
    store, _, _ = await setup(session, wechat)
    cola = await make_product(session, stores=[store], price_fen=350)
    order = await make_order(session, store, [(cola, 2)], customer_phone="13800005678")
    url = "/api/v1/public/orders/lookup"

    r = await client.get(url, params={"order_no": order.order_no, "phone_last4": "1234"})
    assert r.status_code == 404
    assert "receipt_token" not in r.text
    r = await client.get(url, params={"order_no": order.order_no, "phone_last4": "5678"})
    assert r.status_code == 200, r.text
    token = r.json()["receipt_token"]
    assert receipts.read_token(token) == order.id
    # The receipt's own page does not hand a token out again (it already holds one).
    assert (await client.get(f"/api/v1/public/orders/receipt/{token}")).json()[
        "receipt_token"
    ] is None

    base = f"/api/v1/public/orders/receipt/{token}"
    r = await client.post(
        f"{base}/payments", json={"attempt_id": "lookup-pay-1", "channel": "wechat"}
    )
    assert r.status_code == 201, r.text
    started = r.json()
    await asyncio.to_thread(wechat.control, "POST", f"/payments/{started['out_trade_no']}/approve")
    await session.execute(
        update(Payment)
        .where(Payment.id == started["payment_id"])
        .values(updated_at=utcnow() - timedelta(minutes=1))
    )
    r = await client.get(f"{base}/payment")
    assert r.json()["attempt"]["state"] == "paid", r.text
    await session.refresh(order)
    assert (order.status, order.paid_fen) == ("paid", 700)
