"""The members console in a real browser against the real server: a member added in the dialog
(a bad mobile refused by the form first), found in the list with the name and mobile masked,
shown whole on the profile only through the reveal, and points added by hand in the adjust
dialog appear in the balance and the points history."""

from __future__ import annotations

import secrets

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
