"""The payments console in a browser: the demo's channels (configured against the sandboxes)
with masked secrets and a test button that reaches the platform; a channel edited after the
platform rotated its key; a terminal's payment-code payment in the payments list and its
drawer."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from selfmart.sandbox.wechatpay.api import TEST_AUTH_CODES

from .conftest import LOGINS
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


def test_editing_a_channel_keeps_secrets_masked_and_a_new_platform_key_replaces_the_old(
    page: Page, server_url: str
) -> None:
    """The WeChat sandbox rotates its platform key: the test button fails with the old key; the
    channel is edited (the private key and APIv3 key are never shown, left empty to keep
    them), the new key replaces the old, and the test passes. The account and the sandbox are
    put back afterwards for the other tests."""
    with httpx.Client(base_url=server_url, timeout=10) as http:
        tokens = http.post(
            "/api/v1/auth/login",
            json={"username": "superadmin", "password": LOGINS["superadmin"]},
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        accounts = http.get("/api/v1/payment-accounts", headers=headers).json()
        wechat = next(a for a in accounts if a["channel"] == "wechat" and a["store_id"] is None)
        before = {k["key_id"]: k["pem"] for k in wechat["platform_public_keys"]}
        rotated = http.post("/sandbox/wechatpay/_control/rotate").json()
    new_id, new_pem = rotated["platform_public_key_id"], rotated["platform_public_key"]
    assert new_id not in before
    try:
        login(page, "superadmin")
        page.goto("/payments/channels")
        row = _rows(page, "accounts-table").filter(has_text="微信支付")
        masked = row.locator("td").nth(5).inner_text()
        assert "**** sha256:" in masked
        row.locator("[data-test=account-test]").click()
        expect(page.locator(".el-message--error")).to_be_visible()

        # the sandbox link opens the page where a person plays the customer
        sandbox_link = row.get_by_role("link", name="沙箱")
        expect(sandbox_link).to_have_attribute(
            "href", re.compile(r"/sandbox/wechatpay/_control/pay$")
        )
        row.get_by_role("button", name="编辑").click()
        dialog = page.locator("[data-test=account-dialog]")
        expect(dialog).to_be_visible()
        # the private key and the APIv3 key: empty, kept, each saying which secret is kept
        for kept in ("留空则保留已保存的私钥", "留空则保留已保存的 APIv3 密钥"):
            secret = dialog.get_by_placeholder(kept, exact=True)
            expect(secret).to_have_count(1)
            expect(secret).to_have_value("")
        # the official account's AppSecret says it is the AppSecret that is kept
        app_secret = dialog.locator("input[data-test=account-app-secret]")
        expect(app_secret).to_have_attribute("placeholder", "留空则保留已保存的 AppSecret")
        expect(app_secret).to_have_value("")
        expect(dialog).not_to_contain_text("PRIVATE KEY")
        # the double-payment switch says it is the default of the stores that leave it unset
        expect(dialog).to_contain_text("重复支付自动退款（门店默认）")
        expect(dialog.locator("[data-test=account-auto-refund-hint]")).to_contain_text(
            "“重复支付”为“按支付账户设置”的门店均按此处理；门店自己选择的处理方式优先"
        )
        key_ids = dialog.get_by_placeholder("公钥 ID", exact=True)
        key_pems = dialog.locator(".keys textarea")
        expect(key_pems).to_have_count(len(before))
        key_ids.first.fill(new_id)
        key_pems.first.fill(new_pem)
        for extra in range(1, len(before)):
            key_pems.nth(extra).fill("")  # an emptied key is dropped: the new one replaces all
        dialog.locator("[data-test=account-save]").click()
        expect(dialog).to_be_hidden()

        row = _rows(page, "accounts-table").filter(has_text="微信支付")
        expect(row).to_contain_text(new_id)
        for old in before:
            expect(row).not_to_contain_text(old)
        expect(row).to_contain_text(masked.splitlines()[0])  # the same private key, masked
        expect(row).not_to_contain_text("PRIVATE KEY")
        row.locator("[data-test=account-test]").click()
        expect(page.locator(".el-message--success").filter(has_text="签名有效")).to_be_visible()
    finally:
        with httpx.Client(base_url=server_url, timeout=10) as http:
            http.post("/sandbox/wechatpay/_control/reset")
            r = http.patch(
                f"/api/v1/payment-accounts/{wechat['id']}",
                json={"platform_public_keys": before},
                headers=headers,
            )
            assert r.status_code == 200, r.text
