"""Reconciliation in a browser: a payment the customer finished at WeChat Pay after the
terminal gave up waiting is in the platform's bill but not paid here; the operator opens the
calendar, opens today, reruns WeChat Pay's bill, and resolves the difference with a note."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from selfmart.sandbox.wechatpay.api import TEST_AUTH_CODES

from .test_console import login
from .test_orders import Terminal, terminal

pytestmark = pytest.mark.browser
__all__ = ["terminal"]


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
        f"{server_url}/sandbox/wechatpay/_control/payments/{out_trade_no}/approve"
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
    expect(page.locator(".el-message--success")).to_contain_text("对账完成")
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
    dialog.locator("[data-test=recon-note]").locator("textarea").fill(
        "顾客稍后在手机上确认，已核实"
    )
    dialog.locator("[data-test=recon-resolve-submit]").click()
    expect(page.locator(".el-message--success")).to_contain_text("差异已处理")
    expect(mine).to_contain_text("已处理")
    expect(mine).to_contain_text("顾客稍后在手机上确认")
