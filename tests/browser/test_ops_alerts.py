"""The Alerts page in a real browser: an operator creates a rule (every active terminal silent
for 0 minutes or more, so the demo's terminals all match), the server's scheduler evaluates it
within its minute, and the operator acknowledges the alert it raised."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from .test_console import login

pytestmark = pytest.mark.browser

#: the scheduler evaluates every 60 s; give it one full period and some
WAIT_SECONDS = 100
#: a shared, busy test machine answers slowly
SLOW = 20_000


def test_create_a_rule_and_acknowledge_its_alert(page: Page) -> None:
    name = f"收银机失联 {uuid.uuid4().hex[:4]}"
    login(page, "superadmin")
    page.goto("/alerts")
    expect(page.locator(".page-head h1")).to_have_text("告警")

    page.locator("#tab-rules").click()
    page.locator("[data-test=rule-create]").click()
    dialog = page.locator(".el-dialog[data-test=rule-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=rule-name]").fill(name)
    dialog.locator("[data-test=rule-threshold] input").fill("0")
    dialog.locator("[data-test=rule-threshold] input").press("Tab")
    dialog.locator("[data-test=rule-users]").click()
    page.locator(".el-select-dropdown__item", has_text="(superadmin)").first.click()
    dialog.locator("[data-test=rule-name]").click()  # close the dropdown
    dialog.locator("[data-test=rule-save]").click()
    expect(dialog).to_be_hidden(timeout=SLOW)
    rule_row = page.locator("[data-test=rules-table] .el-table__row", has_text=name)
    expect(rule_row).to_contain_text("终端离线（分钟）", timeout=SLOW)
    expect(rule_row).to_contain_text("≥ 0 min")

    page.locator("#tab-alerts").click()
    rows = page.locator("[data-test=alerts-table] .el-table__row", has_text=name)
    deadline = time.monotonic() + WAIT_SECONDS
    while rows.count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(3000)
        page.get_by_role("button", name="查询").first.click()
    expect(rows.first).to_be_visible()
    subject = rows.first.locator("[data-test=alert-subject]").inner_text()

    rows.first.locator("[data-test=alert-ack]").click()
    box = page.locator(".el-message-box")
    expect(box).to_be_visible()
    box.locator("input").fill("已通知技术员")
    box.locator(".el-button--primary").click()
    expect(page.locator(".el-message--success")).to_contain_text("已确认", timeout=SLOW)

    page.locator("[data-test=alert-status]").get_by_text("已确认").click()
    acked = page.locator("[data-test=alerts-table] .el-table__row", has_text=name).filter(
        has_text=subject
    )
    expect(acked).to_have_count(1, timeout=SLOW)
    expect(acked).to_contain_text("已通知技术员")
