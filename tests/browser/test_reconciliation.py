"""Reconciliation in a browser: a payment the customer finished at WeChat Pay after the
terminal gave up waiting is in the platform's bill but not paid here; the operator opens the
calendar, opens today, reruns WeChat Pay's bill, and resolves the difference with a note."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from selfmart.sandbox.wechatpay.api import TEST_AUTH_CODES
from selfmart.terminals import signing

from .conftest import LOGINS
from .test_console import login
from .test_orders import TERMINAL_CODE, Terminal

pytestmark = pytest.mark.browser
#: the machines this runs on are shared: a login (password hashing) may take a while
SLOW = 60.0


class _Terminal(Terminal):
    def request(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        headers = signing.sign(
            key_id=self.key_id, secret=self.secret, method=method, target=path, body=body
        )
        if payload is not None:
            headers["content-type"] = "application/json"
        return httpx.request(
            method, f"{self.base}{path}", content=body, headers=headers, timeout=SLOW
        )


@pytest.fixture(scope="module")
def terminal(server_url: str) -> Terminal:
    """A demo terminal activated with a fresh one-time code (as tests/browser/test_orders.py
    does, with patience for a busy machine)."""
    with httpx.Client(base_url=server_url, timeout=SLOW) as http:
        login_ = http.post(
            "/api/v1/auth/login", json={"username": "superadmin", "password": LOGINS["superadmin"]}
        )
        assert login_.status_code == 200, login_.text
        http.headers["authorization"] = f"Bearer {login_.json()['access_token']}"
        found = http.get("/api/v1/terminals", params={"q": TERMINAL_CODE}).json()
        terminal_id = next(t["id"] for t in found["items"] if t["code"] == TERMINAL_CODE)
        code = http.post(f"/api/v1/terminals/{terminal_id}/activation-code").json()
        activated = http.post(
            "/api/terminal/v1/activate",
            json={"terminal_code": TERMINAL_CODE, "activation_code": code["activation_code"]},
        )
    assert activated.status_code == 200, activated.text
    key = activated.json()
    term = _Terminal(server_url, key["key_id"], key["secret"], [])
    sync = term.request("GET", "/api/terminal/v1/products")
    assert sync.status_code == 200, sync.text
    term.products = [p for p in sync.json()["items"] if p["barcodes"] and p["price_fen"] >= 300]
    assert term.products
    return term


def test_open_a_day_rerun_and_resolve_a_difference(
    page: Page, terminal: Terminal, server_url: str
) -> None:
    made = terminal.order(quantity=1)
    started = terminal.request(
        "POST",
        f"/api/terminal/v1/orders/{made['order_no']}/payments",
        {
            "attempt_id": "bt-recon-1",
            "channel": "wechat",
            "mode": "code",
            "auth_code": TEST_AUTH_CODES["user_paying"],
        },
    )
    assert started.status_code == 201, started.text
    out_trade_no = started.json()["out_trade_no"]
    # The customer confirms on the phone later: the platform has the money, we do not.
    approved = httpx.post(
        f"{server_url}/sandbox/wechatpay/_control/payments/{out_trade_no}/approve", timeout=SLOW
    )
    assert approved.status_code == 200, approved.text
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()

    login(page, "superadmin")
    page.goto("/reconciliation")
    expect(page.locator("[data-test=recon-calendar]")).to_contain_text("微信支付")
    page.locator(f"[data-test=recon-day-{today}]").click()
    expect(page.locator("h1")).to_contain_text(today)

    runs = page.locator("[data-test=recon-runs] .el-table__body-wrapper .el-table__row")
    runs.filter(has_text="微信支付").first.locator("[data-test^=recon-rerun-]").click()
    page.locator(".el-message-box__btns .el-button--primary").click()
    expect(page.locator(".el-message--success")).to_contain_text("对账完成", timeout=60_000)
    expect(page.locator("[data-test=recon-totals]")).to_contain_text("平台汇总")

    row = page.locator("[data-test=recon-differences] .el-table__body-wrapper .el-table__row")
    mine = row.filter(has_text=out_trade_no)
    expect(mine).to_contain_text("状态不符")
    expect(mine).to_contain_text("待处理")
    mine.locator("[data-test=recon-detail]").click()
    drawer = page.locator("[data-test=recon-drawer]")
    expect(drawer.locator("[data-test=recon-bill-line]")).to_contain_text(out_trade_no)
    expect(drawer.locator("[data-test=recon-order-link]")).to_have_text(made["order_no"])
    page.keyboard.press("Escape")

    mine.locator("[data-test=recon-resolve]").click()
    dialog = page.locator("[data-test=recon-resolve-dialog]")
    dialog.locator("[data-test=recon-note]").fill("顾客稍后在手机上确认，已核实")
    dialog.locator("[data-test=recon-resolve-submit]").click()
    # the rerun's message may still be fading out: look for this one by its words
    expect(page.locator(".el-message--success", has_text="差异已处理")).to_be_visible()
    expect(mine).to_contain_text("已处理")
    expect(mine).to_contain_text("顾客稍后在手机上确认")
