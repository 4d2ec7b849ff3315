"""The payments console in a browser: the demo's channels (configured against the sandboxes)
with masked secrets and a test button that reaches the platform; a terminal's payment-code
payment in the payments list and its drawer."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from selfmart.sandbox.wechatpay.api import TEST_AUTH_CODES

from .test_console import login
from .test_orders import Terminal, terminal

pytestmark = pytest.mark.browser
__all__ = ["terminal"]  # the module's activated demo terminal (tests/browser/test_orders.py)


def _rows(page: Page, table: str) -> Any:
    return page.locator(f"[data-test={table}] .el-table__body-wrapper .el-table__row")


def test_the_demo_channels_are_masked_and_pass_their_test(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/payments/channels")
    rows = _rows(page, "accounts-table")
    expect(rows).to_have_count(3)
    wechat = rows.filter(has_text="微信支付")
    expect(wechat).to_contain_text("**** sha256:")
    expect(wechat).not_to_contain_text("PRIVATE KEY")
    wechat.locator("[data-test=account-test]").click()
    expect(page.locator(".el-message--success")).to_contain_text("签名有效")


def test_a_terminal_payment_shows_in_the_list_and_its_drawer(
    page: Page, terminal: Terminal
) -> None:
    made = terminal.order(quantity=1)
    paid = terminal.request(
        "POST",
        f"/api/terminal/v1/orders/{made['order_no']}/payments",
        {
            "attempt_id": "bt-pay-1",
            "channel": "wechat",
            "mode": "code",
            "auth_code": TEST_AUTH_CODES["success"],
        },
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["state"] == "paid"

    login(page, "superadmin")
    page.goto("/payments")
    page.get_by_placeholder("订单号").fill(made["order_no"])
    page.locator("[data-test=payments-search]").click()
    rows = _rows(page, "payments-table")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("已支付")
    expect(rows.first).to_contain_text("微信支付")
    rows.first.locator("[data-test=payment-detail]").click()
    drawer = page.locator(".el-drawer")
    expect(drawer).to_contain_text(paid.json()["out_trade_no"])
    expect(drawer).to_contain_text("/v3/pay/transactions/codepay")
