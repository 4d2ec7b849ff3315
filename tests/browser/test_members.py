"""The members console in a real browser against the real server: a member added in the dialog
(a bad mobile refused by the form first), found in the list with the name and mobile masked,
shown whole on the profile only through the reveal, and points added by hand in the adjust
dialog appear in the balance and the points history."""

from __future__ import annotations

import re
import secrets
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from .test_console import login

pytestmark = pytest.mark.browser


def test_add_find_reveal_and_adjust_points(page: Page) -> None:
    mobile = f"139{secrets.randbelow(10**8):08d}"
    login(page, "superadmin")
    page.goto("/members")
    page.locator("[data-test=member-create]").click()
    dialog = page.locator(".el-dialog[data-test=member-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=member-name]").fill("欧阳修")
    dialog.locator("[data-test=member-mobile]").fill("12345")
    dialog.locator("[data-test=member-save]").click()
    expect(dialog).to_contain_text("13-19")  # the form's own check, before any request
    dialog.locator("[data-test=member-mobile]").fill(mobile)
    dialog.locator("[data-test=member-save]").click()
    expect(dialog).to_be_hidden()

    masked = f"{mobile[:3]}****{mobile[-4:]}"
    page.locator("[data-test=member-search]").fill(mobile)
    page.locator("[data-test=member-search]").press("Enter")
    table = page.locator("[data-test=members-table]")
    expect(table.locator(".el-table__row")).to_have_count(1)
    expect(table).to_contain_text(masked)
    expect(table).to_contain_text("欧**")
    expect(table).not_to_contain_text(mobile)

    table.locator("[data-test=member-link]").click()
    expect(page.locator("[data-test=member-mobile-shown]")).to_have_text(masked)
    page.locator("[data-test=member-reveal]").click()
    expect(page.locator("[data-test=member-mobile-shown]")).to_have_text(mobile)
    expect(page.locator("[data-test=member-name-shown]")).to_have_text("欧阳修")

    page.locator("[data-test=points-adjust]").click()
    points = page.locator(".el-dialog[data-test=points-dialog]")
    expect(points).to_be_visible()
    points.locator("[data-test=points-amount] input").fill("50")
    points.locator("[data-test=points-reason]").fill("开卡礼")
    points.locator("[data-test=points-save]").click()
    expect(points).to_be_hidden()
    expect(page.locator("[data-test=member-points]")).to_have_text("50")
    history = page.locator("[data-test=points-table]")
    expect(history).to_contain_text("开卡礼")
    expect(history).to_contain_text("手工调整")


def _sandbox_code(server_url: str, mobile: str) -> str:
    """The sign-in code the SMS sandbox received for `mobile` (the newest one); the server
    sends it after its commit, so it is waited for."""
    deadline = time.monotonic() + 15
    while True:
        got = httpx.get(f"{server_url}/sandbox/sms/messages", params={"phone": mobile}).json()
        codes = [re.search(r"验证码为 (\d{6})", m["params"].get("content", "")) for m in got]
        found = [c.group(1) for c in codes if c]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no code reached the SMS sandbox for {mobile}"
        time.sleep(0.2)


def test_filter_by_tier_profile_and_the_members_own_page(page: Page, server_url: str) -> None:
    login(page, "superadmin")
    page.goto("/members")
    table = page.locator("[data-test=members-table]")
    expect(table.locator(".el-table__row").first).to_be_visible()
    page.locator("[data-test=member-filter-tier]").click()
    page.locator(
        ".el-select-dropdown:visible .el-select-dropdown__item", has_text="银卡会员"
    ).click()
    page.locator("[data-test=member-search-submit]").click()
    rows = table.locator(".el-table__row")
    expect(rows.first).to_contain_text("银卡会员")
    for n in range(rows.count()):
        expect(rows.nth(n)).to_contain_text("银卡会员")
    expect(table).not_to_contain_text("金卡会员")
    expect(table).not_to_contain_text("普通会员")

    rows.first.locator("[data-test=member-link]").click()
    expect(page.locator("[data-test=member-tier-shown]")).to_have_text("银卡会员")
    balance = page.locator("[data-test=member-points]").inner_text()
    assert int(balance) > 0  # earned on the demo's orders
    expect(page.locator("[data-test=points-table] .el-table__row").first).to_be_visible()
    expect(page.locator("[data-test=tier-history-table]")).to_contain_text("银卡会员")
    # A coupon given here shows on the member's own page.
    page.locator("[data-test=coupon-template-pick]").click()
    page.locator(
        ".el-select-dropdown:visible .el-select-dropdown__item", has_text="满30减3"
    ).click()
    page.locator("[data-test=coupon-give]").click()
    expect(page.locator("[data-test=member-coupons]")).to_contain_text("满30减3")
    page.locator("[data-test=member-reveal]").click()
    expect(page.locator("[data-test=member-mobile-shown]")).to_have_text(re.compile(r"^1\d{10}$"))
    mobile = page.locator("[data-test=member-mobile-shown]").inner_text().strip()
    assert re.fullmatch(r"1\d{10}", mobile)

    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto("/my-member")
    phone.locator("[data-test=member-mobile]").fill(mobile)
    phone.locator("[data-test=member-send]").click()
    expect(phone.locator("[data-test=member-send]")).to_be_disabled()  # the resend countdown
    phone.locator("[data-test=member-code]").fill(_sandbox_code(server_url, mobile))
    phone.locator("[data-test=member-submit]").click()
    expect(phone.locator("[data-test=member-tier]")).to_have_text("银卡会员")
    expect(phone.locator("[data-test=member-points]")).to_have_text(balance)
    expect(phone.locator("[data-test=member-dynamic-code]")).to_be_visible()
    expect(phone.locator("[data-test=member-order]").first).to_be_visible()
    phone.locator("[data-test=member-messages-tab]").click()
    expect(phone.locator("[data-test=member-message]").first).to_contain_text("银卡会员")
    phone.locator("[data-test=member-coupons-tab]").click()
    coupon = phone.locator("[data-test=member-coupon]", has_text="满30减3").first
    expect(coupon).to_contain_text("可用")
    expect(coupon).to_contain_text("-¥3.00")
    phone.locator("[role=tab]", has_text="等级变化").click()
    expect(phone.locator("[data-test=member-tier-change]").first).to_contain_text("银卡会员")


def test_a_tiers_member_prices_are_switched_in_the_tier_dialog(page: Page) -> None:
    """The tier rules console shows whether each tier pays member prices and switches it in the
    tier's dialog; the tiers table shows the saved setting."""
    login(page, "superadmin")
    page.goto("/members/rules")
    row = page.locator("[data-test=tiers-table] .el-table__row", has_text="金卡会员")
    shown = row.locator("[data-test=tier-member-prices-shown]")
    expect(shown).to_have_text("✓")
    for want in ("—", "✓"):  # off, then back on (the demo tier as it was)
        row.locator("[data-test=tier-edit]").click()
        dialog = page.locator(".el-dialog[data-test=tier-dialog]")
        expect(dialog).to_be_visible()
        dialog.locator("[data-test=tier-member-prices]").click()
        page.locator("[data-test=tier-save]").click()
        expect(dialog).to_be_hidden()
        expect(shown).to_have_text(want)
