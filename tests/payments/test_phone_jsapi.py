"""The phone page opened inside WeChat pays by JSAPI (against the WeChat sandbox, on both
backends): the page learns it should authorise (User-Agent MicroMessenger and an AppSecret on
the store's account), WeChat's authorisation comes back with a code, the code becomes the
payer's openid, a JSAPI prepay is made and its getBrandWCPayRequest parameters answered with a
paySign that verifies with the merchant's public key; the payment sheet pays and the order is
paid. A bad or reused code is refused and starts nothing; outside WeChat the page keeps H5."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.kit.time import utcnow
from selfmart.models import Order, Payment
from selfmart.orders import receipts
from selfmart.payments.wechatpay import protocol as wx
from tests.payments.test_callbacks_hot import _order_like
from tests.payments.test_terminal_pay import setup
from tests.payments.wechatpay.support import Sandbox

IN_WECHAT = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI "
    "Language/zh_CN"
}


async def _authorise(client: httpx.AsyncClient, base: str, token: str) -> str:
    """Follow the page's authorisation link as WeChat's browser would: the code it brings back."""
    r = await client.get(f"{base}/payment", headers=IN_WECHAT)
    assert r.status_code == 200, r.text
    link = r.json()["wechat_oauth_url"]
    assert link is not None
    assert link.endswith("#wechat_redirect")
    async with httpx.AsyncClient(timeout=10) as browser:
        back = await browser.get(link, headers=IN_WECHAT)
    assert back.status_code == 302, back.text
    target = urlsplit(back.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        f"{get_settings().public_base_url.rstrip('/')}/r/{token}"
    )
    query = parse_qs(target.query)
    assert query["state"] == ["selfmart-jsapi"]
    return query["code"][0]


async def test_inside_wechat_the_page_pays_by_jsapi(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, _, order = await setup(session, wechat, with_app_secret=True)
    token = receipts.make_token(order.id)
    base = f"/api/v1/public/orders/receipt/{token}"

    outside = await client.get(f"{base}/payment")
    assert outside.json()["wechat_oauth_url"] is None  # another browser: H5 as before

    code = await _authorise(client, base, token)
    r = await client.post(
        f"{base}/payments",
        json={"attempt_id": "phone-jsapi-1", "channel": "wechat", "oauth_code": code},
        headers=IN_WECHAT,
    )
    assert r.status_code == 201, r.text
    started = r.json()
    assert (started["mode"], started["state"], started["amount_fen"]) == ("jsapi", "waiting", 700)
    sheet = started["jsapi"]
    creds = wechat.credentials()
    assert (sheet["appId"], sheet["signType"]) == (creds["app_id"], "RSA")
    assert sheet["package"] == f"prepay_id={started['pay_url']}"
    merchant_public = wx.load_private_key(creds["merchant_private_key"]).public_key()
    message = f"{sheet['appId']}\n{sheet['timeStamp']}\n{sheet['nonceStr']}\n{sheet['package']}\n"
    assert wx.verify(merchant_public, message.encode(), sheet["paySign"])

    # the answer lost, the page sends the same attempt again: its state, freshly signed
    again = await client.post(
        f"{base}/payments",
        json={"attempt_id": "phone-jsapi-1", "channel": "wechat", "oauth_code": code},
    )
    assert again.status_code == 200, again.text
    assert again.json()["payment_id"] == started["payment_id"]
    assert again.json()["jsapi"]["package"] == sheet["package"]

    # WeChat's payment sheet: a tampered sign is refused, the real one pays
    forged = await asyncio.to_thread(
        wechat.control, "POST", "/jsapi/pay", json={**sheet, "timeStamp": "1"}
    )
    assert (forged.status_code, forged.json()["error"]) == (400, "bad_pay_sign")
    paid = await asyncio.to_thread(wechat.control, "POST", "/jsapi/pay", json=sheet)
    assert paid.status_code == 200, paid.text

    await session.execute(
        update(Payment)
        .where(Payment.id == started["payment_id"])
        .values(updated_at=utcnow() - timedelta(minutes=1))
    )
    r = await client.get(f"{base}/payment", headers=IN_WECHAT)
    assert r.status_code == 200, r.text
    assert r.json()["attempt"]["state"] == "paid"
    assert (r.json()["order_status"], r.json()["owed_fen"]) == ("paid", 0)
    assert r.json()["wechat_oauth_url"] is None  # nothing left to pay
    await session.refresh(order)
    assert (order.status, order.paid_fen, order.payment_method) == ("paid", 700, "wechat")


async def test_a_bad_or_reused_code_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, _, order = await setup(session, wechat, with_app_secret=True)
    token = receipts.make_token(order.id)
    base = f"/api/v1/public/orders/receipt/{token}"

    async def attempts() -> int:
        return int(
            await session.scalar(
                select(func.count()).select_from(Payment).where(Payment.order_id == order.id)
            )
            or 0
        )

    r = await client.post(
        f"{base}/payments",
        json={"attempt_id": "phone-jsapi-1", "channel": "wechat", "oauth_code": "0" * 32},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "oauth_code_refused"
    assert r.json()["details"][0]["field"] == "oauth_code"
    assert "40029" in r.json()["message"]

    code = await _authorise(client, base, token)
    async with httpx.AsyncClient(timeout=10) as other:  # someone else spends the code first
        used = await other.get(
            f"{wechat.base_url}/sns/oauth2/access_token",
            params={
                "appid": wechat.credentials()["app_id"],
                "secret": wechat.credentials()["app_secret"],
                "code": code,
                "grant_type": "authorization_code",
            },
        )
    assert "openid" in used.json()
    r = await client.post(
        f"{base}/payments",
        json={"attempt_id": "phone-jsapi-2", "channel": "wechat", "oauth_code": code},
    )
    assert r.status_code == 422, r.text
    assert "40163" in r.json()["message"]
    assert await attempts() == 0
    fresh = await session.get(Order, order.id, populate_existing=True)
    assert fresh is not None
    assert fresh.status != "paid"


async def test_without_an_app_secret_wechat_keeps_h5(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    _, _, order = await setup(session, wechat)
    base = f"/api/v1/public/orders/receipt/{receipts.make_token(order.id)}"
    r = await client.get(f"{base}/payment", headers=IN_WECHAT)
    assert (r.json()["channels"], r.json()["wechat_oauth_url"]) == (["wechat"], None)
    r = await client.post(
        f"{base}/payments",
        json={"attempt_id": "phone-jsapi-1", "channel": "wechat", "oauth_code": "abc"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "oauth_code_refused"


async def test_a_refused_payment_is_paid_again_as_the_same_payer_without_a_new_code(
    client: httpx.AsyncClient, session: AsyncSession, wechat: Sandbox
) -> None:
    """The authorisation code is spent by the first attempt; its answer's `payer_token` lets the
    page pay again after the customer cancelled WeChat's sheet, as the same payer (openid), with
    no new authorisation round. A token is good only for its order, and as it was given."""
    _, creds, order = await setup(session, wechat, with_app_secret=True)
    other_order = await _order_like(session, order, creds)
    token = receipts.make_token(order.id)
    base = f"/api/v1/public/orders/receipt/{token}"
    code = await _authorise(client, base, token)
    first = await client.post(
        f"{base}/payments",
        json={"attempt_id": "phone-jsapi-1", "channel": "wechat", "oauth_code": code},
        headers=IN_WECHAT,
    )
    assert first.status_code == 201, first.text
    payer_token = first.json()["payer_token"]
    assert payer_token.startswith("v1:")
    # the customer cancels on WeChat's sheet
    cancelled = await asyncio.to_thread(
        wechat.control, "POST", "/jsapi/pay", json={**first.json()["jsapi"], "approve": False}
    )
    assert cancelled.status_code == 200, cancelled.text

    spent = await client.post(
        f"{base}/payments",
        json={"attempt_id": "phone-jsapi-2", "channel": "wechat", "oauth_code": code},
    )
    assert (spent.status_code, spent.json()["error"]) == (422, "oauth_code_refused")

    refused = []
    for bad in (
        payer_token[:-4] + ("AAAA" if not payer_token.endswith("AAAA") else "BBBB"),
        # another order's page: the same payer token is not good there
        None,
    ):
        url = (
            base if bad else f"/api/v1/public/orders/receipt/{receipts.make_token(other_order.id)}"
        )
        r = await client.post(
            f"{url}/payments",
            json={
                "attempt_id": "phone-jsapi-x",
                "channel": "wechat",
                "payer_token": bad or payer_token,
            },
        )
        refused.append((r.status_code, r.json()["error"], r.json()["details"][0]["field"]))
    assert refused == [(422, "payer_token_refused", "payer_token")] * 2

    again = await client.post(
        f"{base}/payments",
        json={"attempt_id": "phone-jsapi-3", "channel": "wechat", "payer_token": payer_token},
        headers=IN_WECHAT,
    )
    assert again.status_code == 201, again.text
    assert (again.json()["mode"], again.json()["state"]) == ("jsapi", "waiting")
    assert again.json()["payment_id"] != first.json()["payment_id"]
    paid = await asyncio.to_thread(wechat.control, "POST", "/jsapi/pay", json=again.json()["jsapi"])
    assert paid.status_code == 200, paid.text

    # both JSAPI prepays named the same payer to WeChat
    received = wechat.control("GET", "/received").json()["requests"]
    payers = [
        json.loads(q["body"])["payer"]["openid"]
        for q in received
        if q["url"].endswith("/v3/pay/transactions/jsapi")
    ]
    assert len(payers) == 2
    assert payers[0] == payers[1]
    assert payers[0].startswith("o")
