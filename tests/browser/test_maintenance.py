"""Maintenance mode in a real browser: turned on from the About page with a message, every
page shows the banner, a change is refused in words, and turning it off lifts both."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import LOGINS
from .test_console import login

pytestmark = pytest.mark.browser


def _force_off(server_url: str) -> None:
    with httpx.Client(base_url=f"{server_url}/api/v1") as api:
        tokens = api.post(
            "/auth/login", json={"username": "superadmin", "password": LOGINS["superadmin"]}
        ).json()
        api.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        api.put("/system/maintenance", json={"on": False})


def test_maintenance_mode_from_the_about_page(page: Page, server_url: str) -> None:
    try:
        login(page, "superadmin")
        page.goto("/about")
        expect(page.locator("[data-test=migrations-state]")).to_have_text("已是最新")
        page.locator("[data-test=maintenance-message]").fill("系统升级中，02:30 恢复")
        page.locator("[data-test=maintenance-on]").click()
        page.locator(".el-message-box").get_by_role("button", name="确定").click()
        banner = page.locator("[data-test=maintenance-banner]")
        expect(banner).to_contain_text("系统维护中")
        expect(banner).to_contain_text("02:30 恢复")
        expect(page.locator("[data-test=maintenance-state]")).to_have_text("已开启")

        # Another page: the banner stays, and a change is refused in words.
        page.goto("/stores")
        expect(banner).to_be_visible()
        page.locator("[data-test=store-create]").click()
        dialog = page.locator(".el-dialog[data-test=store-dialog]")
        dialog.locator("[data-test=store-code]").fill("SH-MAINT")
        dialog.locator("[data-test=store-name]").fill("维护期间的门店")
        dialog.locator("[data-test=store-city]").fill("上海")
        dialog.locator("[data-test=store-save]").click()
        expect(page.locator(".el-message--error")).to_contain_text("系统维护中，请稍后再试")
        page.keyboard.press("Escape")

        page.goto("/about")
        page.locator("[data-test=maintenance-off]").click()
        page.locator(".el-message-box").get_by_role("button", name="确定").click()
        expect(page.locator("[data-test=maintenance-state]")).to_have_text("未开启")
        expect(banner).to_have_count(0)
    finally:
        _force_off(server_url)
