"""Paying inside WeChat (JSAPI) from the receipt's page, as WeChat's in-app browser would: its
User-Agent says `MicroMessenger`, so the page sends the customer through the WeChat sandbox's
web authorisation, comes back with the one-use code, and pays on WeChat's payment sheet (the
sandbox's `/_control/jsapi/pay`, which checks `paySign` as WeChat does); the page then shows
the order paid."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from .test_orders import Terminal, terminal

pytestmark = pytest.mark.browser
__all__ = ["terminal"]  # the module's activated demo terminal (tests/browser/test_orders.py)

#: WeChat 8 on an Android phone, as its built-in browser introduces itself.
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.120 Mobile Safari/537.36 XWEB/1220099 "
    "MMWEBSDK/20240301 MicroMessenger/8.0.48.2580(0x28003035) WeChat/arm64 Weixin "
    "NetType/WIFI Language/zh_CN ABI/arm64"
)

#: WeChat's own JavaScript bridge, which the app puts into every page it shows; here it hands
#: `getBrandWCPayRequest`'s parameters to the sandbox's payment sheet, as the app hands them
#: to WeChat, and the customer confirms.
BRIDGE = """
window.WeixinJSBridge = {
  invoke(name, params, done) {
    if (name !== 'getBrandWCPayRequest') return done({ err_msg: name + ':fail' })
    fetch('/sandbox/wechatpay/_control/jsapi/pay', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(params),
    })
      .then((r) => r.json())
      .then((r) => done({ err_msg: r.err_msg }), () => done({ err_msg: name + ':fail' }))
  },
}
"""


def _wechat_page(browser: Browser, server_url: str) -> Page:
    ctx = browser.new_context(
        base_url=server_url,
        user_agent=WECHAT_UA,
        viewport={"width": 390, "height": 844},
        locale="zh-CN",
        storage_state={
            "cookies": [],
            "origins": [
                {
                    "origin": server_url,
                    "localStorage": [{"name": "selfmart.locale", "value": "zh-CN"}],
                }
            ],
        },
    )
    ctx.set_default_timeout(15_000)
    ctx.add_init_script(BRIDGE)
    return ctx.new_page()


def test_inside_wechat_the_receipt_page_pays_by_jsapi(
    browser: Browser, server_url: str, terminal: Terminal
) -> None:
    made = terminal.order(quantity=1)
    receipt = urlsplit(made["receipt_url"]).path
    page = _wechat_page(browser, server_url)
    went: list[str] = []

    def seen(request: Request) -> None:
        if request.is_navigation_request():
            went.append(request.url)

    page.on("request", seen)
    try:
        page.goto(receipt)
        expect(page.locator("[data-test=customer-status]")).to_have_text("待支付")
        pay = page.locator("[data-test=phone-pay-wechat]")
        expect(pay).to_be_visible()
        pay.click()

        # WeChat's authorisation (the sandbox's), straight back to the page with the code,
        # which the page takes out of its address at once; then WeChat's payment sheet.
        expect(page.locator("[data-test=customer-status]")).to_have_text("已支付")
        assert urlsplit(page.url).path == receipt
        assert any("/sandbox/wechatpay/connect/oauth2/authorize" in u for u in went), went
        assert any("code=" in u and "state=selfmart-jsapi" in u for u in went), went
        assert "code=" not in page.url
        expect(page.locator("[data-test=customer-owed]")).to_have_count(0)
        expect(page.locator("[data-test=customer-order-no]")).to_have_text(made["order_no"])
        expect(page.locator("[data-test=phone-pay]")).to_have_count(0)
    finally:
        page.context.close()

    # The sandbox holds one JSAPI payment of the order, paid by the sandbox's customer.
    payments = httpx.get(f"{server_url}/sandbox/wechatpay/_control/payments", timeout=10).json()
    mine = [p for p in payments if p["out_trade_no"].startswith(made["order_no"])]
    assert [(p["trade_type"], p["trade_state"]) for p in mine] == [("JSAPI", "SUCCESS")]


#: The bridge as above, whose customer cancels the first payment sheet of a page and pays the
#: next.
BRIDGE_CANCEL_FIRST = BRIDGE.replace(
    "body: JSON.stringify(params),",
    "body: JSON.stringify({ ...params,"
    " approve: (window.__sheets = (window.__sheets || 0) + 1) > 1 }),",
)


def test_inside_wechat_paying_again_after_a_cancel_needs_no_new_authorisation(
    browser: Browser, server_url: str, terminal: Terminal
) -> None:
    made = terminal.order(quantity=1)
    receipt = urlsplit(made["receipt_url"]).path
    page = _wechat_page(browser, server_url)
    page.context.add_init_script(BRIDGE_CANCEL_FIRST)
    went: list[str] = []

    def seen(request: Request) -> None:
        if request.is_navigation_request():
            went.append(request.url)

    page.on("request", seen)
    try:
        page.goto(receipt)
        page.locator("[data-test=phone-pay-wechat]").click()
        # authorised, back with the code, the sheet opens: the customer cancels it
        expect(page.locator(".phone-pay .warn")).to_be_visible()
        expect(page.locator("[data-test=customer-status]")).to_have_text("待支付")
        authorised = [u for u in went if "/connect/oauth2/authorize" in u]
        assert len(authorised) == 1, went

        # paying again: the page's kept payer, no second trip through WeChat's authorisation
        page.locator("[data-test=phone-pay-wechat]").click()
        expect(page.locator("[data-test=customer-status]")).to_have_text("已支付")
        assert [u for u in went if "/connect/oauth2/authorize" in u] == authorised, went
        assert urlsplit(page.url).path == receipt
    finally:
        page.context.close()

    payments = httpx.get(f"{server_url}/sandbox/wechatpay/_control/payments", timeout=10).json()
    mine = [p for p in payments if p["out_trade_no"].startswith(made["order_no"])]
    assert sorted(p["trade_state"] for p in mine) == ["PAYERROR", "SUCCESS"], mine
