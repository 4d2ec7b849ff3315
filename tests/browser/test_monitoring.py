"""The monitoring and backups pages in a real browser against the real server: the host's
figures, the slowest routes and the job queue shown in Chinese; "back up now" asks first, then
lists the new archive."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .test_console import login

pytestmark = pytest.mark.browser


def test_monitoring_page_shows_host_database_and_routes(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/monitoring")
    expect(page.locator("h2")).to_have_text("系统监控")
    for card in ("cpu", "memory", "disk", "network", "jobs"):
        expect(page.locator(f"[data-test={card}]")).to_be_visible()
    expect(page.locator("[data-test=memory]")).to_contain_text("已用")
    expect(page.locator("[data-test=jobs]")).to_contain_text("在线终端")
    # without Redis, the one machine is the one that answered, named over the host cards
    machines = page.locator("[data-test=machines] .el-table__row")
    expect(machines).to_have_count(1)
    expect(machines.first).to_contain_text("本机")
    expect(page.locator("[data-test=host-name]")).to_contain_text("主机：")
    # the login that just happened is a timed route, named by its template
    expect(page.locator("[data-test=slowest]")).to_contain_text("/api/v1/auth/login")


def test_back_up_now_lists_the_new_archive(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/backups")
    expect(page.locator("h2")).to_have_text("数据备份")
    rows = page.locator("[data-test=backups] .el-table__row")
    before = rows.count()
    page.locator("[data-test=back-up-now]").click()
    box = page.locator(".el-message-box")
    expect(box).to_contain_text("现在备份数据库和上传的文件吗")
    box.locator(".el-button--primary").click()
    expect(page.locator(".el-message--success")).to_contain_text("已写入")
    expect(rows).to_have_count(before + 1)
    expect(rows.first).to_contain_text("selfmart-")
    expect(rows.first).to_contain_text("KiB")
